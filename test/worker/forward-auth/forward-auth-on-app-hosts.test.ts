/**
 * Forward-auth for an app host (README "Hosts"): when `X-Forwarded-Host` names a host some route
 * names, that host's routes decide, as on the built-in proxy. A path none of them serves gets the
 * default policy (a signed-in user), never a route of the gateway's own host: those are another
 * site's, and a public one there must not open every unlisted path of every app host.
 */
import { describe, expect, it } from 'vitest';
import { bearer, call, makeEnv, registerUser } from '../support/helpers';

const env = makeEnv({
  ROUTES: JSON.stringify([
    // The gateway host's public landing pages.
    { path: '/', origin: 'https://www.internal.example', auth: 'public' },
    { host: 'wiki.example.org', path: '/private', origin: 'https://wiki.internal.example', auth: 'required' },
  ]),
});

describe('forward-auth for a named host', () => {
  it('a path none of its routes serves needs a signed-in user: the gateway host’s public route does not apply', async () => {
    const anonymous = await call('/auth/verify', { env, headers: { 'x-forwarded-host': 'wiki.example.org', 'x-forwarded-uri': '/other' } });
    expect(anonymous.status).toBe(401);
    const { access_token } = await registerUser(undefined, undefined, env);
    const signedIn = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-forwarded-host': 'wiki.example.org', 'x-forwarded-uri': '/other' } });
    expect(signedIn.status).toBe(200);
  });

  it('its own routes still decide their paths, and a host no route names keeps the path-based choice', async () => {
    expect((await call('/auth/verify', { env, headers: { 'x-forwarded-host': 'wiki.example.org', 'x-forwarded-uri': '/private/x' } })).status).toBe(401);
    expect((await call('/auth/verify', { env, headers: { 'x-forwarded-host': 'legacy.example.net', 'x-forwarded-uri': '/other' } })).status).toBe(200);
    expect((await call('/auth/verify', { env, headers: { 'x-forwarded-uri': '/other' } })).status).toBe(200);
  });
});
