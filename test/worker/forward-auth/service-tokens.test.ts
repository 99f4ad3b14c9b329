/**
 * Services at forward-auth (`GET /auth/verify`): a service's own token passes where the route's
 * policy admits services, and the answer carries `X-Auth-Client-Id` and a service assertion as
 * the proxy's request would, nothing of a person. The two service-token headers are refused
 * here (the proxy in front would pass them on to the origin), and count as a refusal.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, PUBLIC_URL } from '../support/helpers';
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
});
