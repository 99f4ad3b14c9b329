/**
 * What a policy's `method` fact is, beyond the request line: a method-override header
 * (`X-HTTP-Method-Override` and kin) is how many frameworks let a GET or POST act as another
 * method, so when one names another method the method is unknown, which fails closed both ways;
 * and HEAD is GET without the body (the origin runs its GET handler), so a rule naming GET names
 * HEAD too.
 */
import { describe, expect, it } from 'vitest';
import { bearer, call, registerUser, uniqueEmail } from '../support/helpers';
import { promote, proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const origin = recordingOrigin();
const routes = [
  {
    path: '/docs',
    origin: 'service:O',
    auth: 'required',
    policy: { allow: [{ roles: ['reader'], method: ['GET'] }, { roles: ['writer'] }], deny: [{ method: ['DELETE'], not: { roles: ['owner'] } }] },
  },
  { path: '/vault', origin: 'service:O', auth: 'required', policy: { allow: [{ roles: ['reader'] }], deny: [{ method: ['GET'], path: ['/secret/**'] }] } },
];
const env = proxyEnv(routes, { O: origin });
const forwardAuthEnv = proxyEnv(routes.map((r) => ({ ...r, origin: 'https://docs.internal.example' })));

async function withRoles(roles: string[], inEnv = env): Promise<string> {
  const email = uniqueEmail('method');
  await registerUser(email, undefined, inEnv);
  return promote(inEnv, email, { roles });
}

const OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];

describe('method-override headers and the method fact', () => {
  it('an allow rule naming GET does not hold for a GET that a header turns into a DELETE', async () => {
    const reader = await withRoles(['reader']);
    expect((await call('/docs/a', { env, headers: bearer(reader) })).status).toBe(200);
    origin.seen.length = 0;
    for (const name of OVERRIDES) {
      const r = await call('/docs/a', { env, headers: { ...bearer(reader), [name]: 'DELETE' } });
      expect(r.status, name).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(origin.seen).toEqual([]);
    // Naming the request's own method changes nothing.
    expect((await call('/docs/a', { env, headers: { ...bearer(reader), 'x-http-method-override': 'get' } })).status).toBe(200);
  });

  it('a deny rule naming DELETE refuses a POST that a header turns into a DELETE', async () => {
    const writer = await withRoles(['writer']);
    expect((await call('/docs/a', { env, method: 'POST', headers: bearer(writer) })).status).toBe(200);
    expect((await call('/docs/a', { env, method: 'DELETE', headers: bearer(writer) })).status).toBe(403);
    const r = await call('/docs/a', { env, method: 'POST', headers: { ...bearer(writer), 'x-http-method-override': 'DELETE' } });
    expect(r.status).toBe(403);
  });

  it('a _method query parameter naming another method (Express, Laravel, Symfony) is read as an override too', async () => {
    const writer = await withRoles(['writer']);
    expect((await call('/docs/a?_method=POST', { env, method: 'POST', headers: bearer(writer) })).status).toBe(200);
    expect((await call('/docs/a?_method=DELETE', { env, method: 'POST', headers: bearer(writer) })).status).toBe(403);
    expect((await call('/docs/a?x=1&_method=delete', { env, method: 'POST', headers: bearer(writer) })).status).toBe(403);
  });

  it('forward-auth: a method-override header the client sent is read as on the proxy', async () => {
    const reader = await withRoles(['reader'], forwardAuthEnv);
    const verify = (headers: Record<string, string>) =>
      call('/auth/verify', { env: forwardAuthEnv, headers: { ...bearer(reader), 'x-forwarded-uri': '/docs/a', 'x-forwarded-method': 'GET', ...headers } });
    expect((await verify({})).status).toBe(200);
    expect((await verify({ 'x-http-method-override': 'DELETE' })).status).toBe(403);
  });

  it('forward-auth: a _method parameter in the forwarded URI is read as on the proxy', async () => {
    const reader = await withRoles(['reader'], forwardAuthEnv);
    const verify = (uri: string) => call('/auth/verify', { env: forwardAuthEnv, headers: { ...bearer(reader), 'x-original-uri': uri, 'x-original-method': 'GET' } });
    expect((await verify('/docs/a?_method=GET')).status).toBe(200);
    expect((await verify('/docs/a?_method=DELETE')).status).toBe(403);
  });
});

describe('HEAD is GET without the body', () => {
  it('a deny rule naming GET refuses HEAD too', async () => {
    const reader = await withRoles(['reader']);
    expect((await call('/vault/public/x', { env, method: 'HEAD', headers: bearer(reader) })).status).toBe(200);
    expect((await call('/vault/secret/x', { env, headers: bearer(reader) })).status).toBe(403);
    origin.seen.length = 0;
    expect((await call('/vault/secret/x', { env, method: 'HEAD', headers: bearer(reader) })).status).toBe(403);
    expect(origin.seen).toEqual([]);
  });

  it('an allow rule naming GET admits HEAD', async () => {
    const reader = await withRoles(['reader']);
    expect((await call('/docs/a', { env, method: 'HEAD', headers: bearer(reader) })).status).toBe(200);
    expect((await call('/docs/a', { env, method: 'POST', headers: bearer(reader) })).status).toBe(403);
  });
});
