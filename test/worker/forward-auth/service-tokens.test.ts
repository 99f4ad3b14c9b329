/**
 * Services at forward-auth (`GET /auth/verify`): a service's own token passes where the route's
 * policy admits services, and the answer carries `X-Auth-Client-Id` and a service assertion as
 * the proxy's request would, nothing of a person. The two service-token headers are refused
 * here (the proxy in front would pass them on to the origin), and count as a refusal.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, PUBLIC_URL, registerUser } from '../support/helpers';
import { proxyEnv } from '../support/proxy-helpers';
import { serviceClient, serviceHeaders, serviceToken } from '../support/service-clients';

const env = proxyEnv([
  { path: '/api', origin: 'https://api.internal.example', auth: 'required', policy: { allow: [{ caller: ['service'] }] } },
  { path: '/wiki', origin: 'https://wiki.internal.example', auth: 'required' },
]);
const API = `${PUBLIC_URL}/api`;

describe('a service token at forward-auth', () => {
  it('passes where the policy admits services: X-Auth-Client-Id and a service assertion, nothing of a person', async () => {
    const { client, secret } = await serviceClient([API]);
    const r = await call('/auth/verify', { env, headers: { ...bearer(await serviceToken(env, client, secret, API)), 'x-forwarded-uri': '/api/export' } });
    expect(r.status, await r.clone().text()).toBe(200);
    const names = [...r.headers.keys()].filter((h) => h.startsWith('x-auth-')).sort();
    expect(names).toEqual(['x-auth-assertion', 'x-auth-client-id']);
    expect(r.headers.get('x-auth-client-id')).toBe(client.id);
    expect(decodeJwt(r.headers.get('x-auth-assertion')!)).toMatchObject({ sub: client.id, client_id: client.id, svc: true, aud: 'https://api.internal.example' });
  });

  it('is refused (403) on a route that does not admit services, and on the default route', async () => {
    const { client, secret } = await serviceClient([`${PUBLIC_URL}/wiki`, PUBLIC_URL]);
    const wiki = await call('/auth/verify', { env, headers: { ...bearer(await serviceToken(env, client, secret, `${PUBLIC_URL}/wiki`)), 'x-forwarded-uri': '/wiki/home' } });
    expect(wiki.status).toBe(403);
    const unmatched = await call('/auth/verify', { env, headers: { ...bearer(await serviceToken(env, client, secret, PUBLIC_URL)), 'x-forwarded-uri': '/elsewhere' } });
    expect(unmatched.status).toBe(403);
    expect(unmatched.headers.get('x-auth-client-id')).toBeNull();
  });
});

describe('the service-token headers at forward-auth', () => {
  it('are refused (403, saying why), whatever the pair, and counted as a refusal', async () => {
    const keys: string[] = [];
    const limited = proxyEnv([{ path: '/api', origin: 'https://api.internal.example', auth: 'required', policy: { allow: [{ caller: ['service'] }] } }], {
      RATE_LIMITER_VERIFY_FAILURE: { limit: async ({ key }: { key: string }) => (keys.push(key), { success: true }) },
    });
    const { client, secret } = await serviceClient([API]);
    const r = await call('/auth/verify', { env: limited, headers: { ...serviceHeaders(client.id, secret), 'x-forwarded-uri': '/api/export' } });
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ error: 'forbidden', error_description: expect.stringContaining('built-in proxy only') });
    expect(r.headers.get('x-auth-client-id')).toBeNull();
    expect(keys).toEqual(['verify_failure:203.0.113.7']);
  });

  it('are refused wherever they come, since an answer of 200 sends them on: a public route, a person\'s request carrying the lone secret, the pair spelt with _', async () => {
    const open = proxyEnv([
      { path: '/open', origin: 'https://open.internal.example', auth: 'public' },
      { path: '/wiki', origin: 'https://wiki.internal.example', auth: 'required' },
    ]);
    const { client, secret } = await serviceClient([API]);
    const publicRoute = await call('/auth/verify', { env: open, headers: { ...serviceHeaders(client.id, secret), 'x-forwarded-uri': '/open/page' } });
    expect(publicRoute.status).toBe(403);
    expect(await publicRoute.json()).toEqual({ error: 'forbidden', error_description: expect.stringContaining('built-in proxy only') });
    const person = await registerUser(undefined, undefined, open);
    const lone = await call('/auth/verify', { env: open, headers: { ...bearer(person.access_token), 'x-gatehouse-client-secret': secret, 'x-forwarded-uri': '/wiki/home' } });
    expect(lone.status).toBe(403);
    expect(lone.headers.get('x-auth-user-id')).toBeNull();
    const underscored = await call('/auth/verify', { env: open, headers: { ...bearer(person.access_token), X_Gatehouse_Client_Secret: secret, 'x-forwarded-uri': '/wiki/home' } });
    expect(underscored.status).toBe(403);
    // Without either header the same person passes: the refusal is the pair's.
    expect((await call('/auth/verify', { env: open, headers: { ...bearer(person.access_token), 'x-forwarded-uri': '/wiki/home' } })).status).toBe(200);
  });
});
