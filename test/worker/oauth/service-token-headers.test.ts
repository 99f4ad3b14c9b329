/**
 * Service tokens for simple scripts: `X-Gatehouse-Client-Id` and `X-Gatehouse-Client-Secret` on a
 * proxied request are exchanged at the edge for a short-lived service token, kept per isolate
 * (never under the secret itself), and the two headers never reach any origin. A wrong pair is a
 * clear 401, counted against the `verify_failure` limit; a rotated secret counts for its overlap
 * alone; a disabled client's kept token is refused by the revocation check.
 */
import { env as baseEnv } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { disableClient, rotateClientSecret } from '../../../src/storage/oauth-clients';
import { revokeSessionIds } from '../../../src/storage/revocation';
import { clientRevocationKey, serviceSessionId } from '../../../src/tokens/grant-token';
import { sha256 } from '../../../src/util/random';
import { bearer, call, countRows, PUBLIC_URL, registerUser, type TestEnv } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { serviceClient, serviceHeaders } from '../support/service-clients';

afterEach(() => vi.useRealTimers());

const origin = recordingOrigin();
const ROUTES = [
  { path: '/api', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'] }] } },
  { path: '/people', origin: 'service:O', auth: 'required' },
  { path: '/open', origin: 'service:O', auth: 'public' },
  { host: 'api.example.com', path: '/', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'] }] } },
];
const env = proxyEnv(ROUTES, { O: origin });
const API = `${PUBLIC_URL}/api`;

async function get(path: string, headers: Record<string, string>, testEnv: TestEnv = env) {
  const before = origin.seen.length;
  const r = await call(path, { env: testEnv, headers });
  return { r, reached: origin.seen.length > before };
}

const issued = (clientId: string) => countRows('auth_events', "event = 'service_token_issued' AND detail LIKE ?", `%${clientId}%`);

/** No header of the pair, in any spelling, in what the origin saw. */
function expectNoPair(label: string) {
  const names = Object.keys(origin.seen.at(-1)!.headers).map((h) => h.toLowerCase().replaceAll('_', '-'));
  expect(names.filter((h) => h.startsWith('x-gatehouse-')), label).toEqual([]);
}

describe('the pair is exchanged at the edge', () => {
  it('passes as the client; the origin sees X-Auth-Client-Id and the assertion, never the pair; the token is kept for the next request', async () => {
    const { client, secret } = await serviceClient([API]);
    const first = await get('/api/x', serviceHeaders(client.id, secret));
    expect(first.r.status, await first.r.clone().text()).toBe(200);
    expectNoPair('first');
    expect(origin.seen.at(-1)!.headers['x-auth-client-id']).toBe(client.id);
    expect(origin.seen.at(-1)!.headers['x-auth-assertion']).toBeDefined();
    expect(await issued(client.id)).toBe(1);

    const second = await get('/api/y', serviceHeaders(client.id, secret));
    expect(second.r.status).toBe(200);
    expectNoPair('second');
    // The same isolate reused its token: none minted.
    expect(await issued(client.id)).toBe(1);
  });

  it('a kept token is given up before it expires: a new one is minted then', async () => {
    // Tokens of 60 s, given up at half their life; the pair checked again every 10 s meanwhile.
    const short = proxyEnv(ROUTES, { O: origin }, { ACCESS_TOKEN_TTL: '60' });
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret), short)).r.status).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    vi.setSystemTime(start + 25_000);
    expect((await get('/api/x', serviceHeaders(client.id, secret), short)).r.status).toBe(200);
    expect(await issued(client.id)).toBe(1);
    vi.setSystemTime(start + 31_000);
    expect((await get('/api/x', serviceHeaders(client.id, secret), short)).r.status).toBe(200);
    expect(await issued(client.id)).toBe(2);
  });
});

describe('the pair is authenticated again every REVOCATION_CACHE_SECONDS', () => {
  it('a pair that still holds keeps its token: none is minted', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11_000);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    expect(await issued(client.id)).toBe(1);
  });

  it('a secret rotated out at once (no overlap) after its token was kept stops opening the proxy; the new secret passes', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    const next = 'the-new-secret'.padEnd(43, 'y');
    expect(await rotateClientSecret(baseEnv.DB, client.id, client.secretHash!, await sha256(next), null, Math.floor(Date.now() / 1000))).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'] });
    // REVOCATION_CACHE_SECONDS is 10 s by default: the bound within which a disable is seen too.
    vi.setSystemTime(Date.now() + 11_000);
    const old = await get('/api/x', serviceHeaders(client.id, secret));
    expect(old.r.status).toBe(401);
    expect(old.reached).toBe(false);
    expect((await get('/api/x', serviceHeaders(client.id, next))).r.status).toBe(200);
  });

  it('a client disabled and enabled again gets a new token at the next check: its kept one was revoked with the old epoch', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    expect(await disableClient(baseEnv.DB, client.id, client.tokenEpoch, 'epoch2', Math.floor(Date.now() / 1000))).toBe(true);
    await revokeSessionIds(baseEnv.REVOKED, [serviceSessionId(client.id, client.tokenEpoch), clientRevocationKey(client.id, client.tokenEpoch)], 600);
    await baseEnv.DB.prepare('UPDATE oauth_clients SET disabled_at = NULL WHERE id = ?').bind(client.id).run();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11_000);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    expect(await issued(client.id)).toBe(2);
  });

  it('a route\'s identifier taken from the client\'s audiences after its token was kept: 403', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    await baseEnv.DB.prepare('UPDATE oauth_clients SET allowed_audiences = ? WHERE id = ?').bind(JSON.stringify(['https://reports.example.com']), client.id).run();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11_000);
    const r = await get('/api/x', serviceHeaders(client.id, secret));
    expect(r.r.status).toBe(403);
    expect(r.reached).toBe(false);
  });
});

describe('on an app host', () => {
  it('the route\'s identifier is the host\'s URL: the pair passes for a client allowed it, not for one allowed the gateway host\'s', async () => {
    const { client, secret } = await serviceClient(['https://api.example.com']);
    const r = await get('https://api.example.com/reports', serviceHeaders(client.id, secret));
    expect(r.r.status, await r.r.clone().text()).toBe(200);
    expectNoPair('app host');
    expect(origin.seen.at(-1)!.headers['x-auth-client-id']).toBe(client.id);
    const { client: other, secret: otherSecret } = await serviceClient([`${PUBLIC_URL}/`, PUBLIC_URL]);
    expect((await get('https://api.example.com/reports', serviceHeaders(other.id, otherSecret))).r.status).toBe(403);
  });
});

describe('the pair never reaches an origin', () => {
  it('on a public route, and the lone secret (no id) on a person\'s route, in either spelling', async () => {
    const { client, secret } = await serviceClient([API]);
    const open = await get('/open/x', { ...serviceHeaders(client.id, secret), 'X_Gatehouse_Client_Secret': secret });
    expect(open.r.status).toBe(200);
    expectNoPair('public');
    const person = await registerUser(undefined, undefined, env);
    const lone = await get('/people/x', { ...bearer(person.access_token), 'x-gatehouse-client-secret': secret });
    expect(lone.r.status).toBe(200);
    expectNoPair('person');
    expect(origin.seen.at(-1)!.headers['x-auth-user-id']).toBe(person.user.id);
  });

  it('with the pair, an Authorization of the origin\'s own is passed on, one carrying a gateway token is not', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', { ...serviceHeaders(client.id, secret), authorization: 'Basic b3JpZ2luOnVzZXI=' })).r.status).toBe(200);
    expect(origin.seen.at(-1)!.headers.authorization).toBe('Basic b3JpZ2luOnVzZXI=');
    const person = await registerUser(undefined, undefined, env);
    expect((await get('/api/x', { ...serviceHeaders(client.id, secret), ...bearer(person.access_token) })).r.status).toBe(200);
    expect(origin.seen.at(-1)!.headers.authorization).toBeUndefined();
    expect(origin.seen.at(-1)!.headers['x-auth-client-id']).toBe(client.id);
    expect(origin.seen.at(-1)!.headers['x-auth-user-id']).toBeUndefined();
  });

  it('a route that does not admit services refuses the pair (403) and the origin is not reached', async () => {
    const { client, secret } = await serviceClient([`${PUBLIC_URL}/people`]);
    const { r, reached } = await get('/people/x', serviceHeaders(client.id, secret));
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ error: 'forbidden', error_description: 'This route does not admit services.' });
    expect(reached).toBe(false);
  });
});

describe('a pair that does not authenticate', () => {
  it('wrong secret, unknown client, no secret: 401 with a clear JSON error, the origin not reached', async () => {
    const { client, secret } = await serviceClient([API]);
    for (const [label, headers] of [
      ['wrong secret', serviceHeaders(client.id, `${secret}x`)],
      ['unknown client', serviceHeaders('cli_nobody', secret)],
      ['no secret', { 'x-gatehouse-client-id': client.id }],
    ] as const) {
      const { r, reached } = await get('/api/x', headers);
      expect(r.status, label).toBe(401);
      expect(await r.json(), label).toEqual({ error: 'invalid_client', error_description: expect.stringContaining('X-Gatehouse-Client-Secret') });
      expect(reached, label).toBe(false);
    }
    expect(await issued(client.id)).toBe(0);
  });

  it('a client id that is a URL (a client ID metadata document, never a service) is refused without fetching it', async () => {
    const documents = proxyEnv(ROUTES, { O: origin }, { CLIENT_ID_METADATA_DOCUMENTS: 'on' });
    const fetched: string[] = [];
    vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
      fetched.push(new Request(input, init).url);
      return new Response('{}', { headers: { 'content-type': 'application/json' } });
    });
    try {
      const { r, reached } = await get('/api/x', serviceHeaders('https://elsewhere.example/anything.json', 'x'), documents);
      expect(r.status).toBe(401);
      expect(await r.json()).toMatchObject({ error: 'invalid_client' });
      expect(reached).toBe(false);
      expect(fetched).toEqual([]);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('a kept token is only for the secret it was exchanged for: a wrong one after a good one is still refused', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    const { r, reached } = await get('/api/x', serviceHeaders(client.id, 'a-guess'));
    expect(r.status).toBe(401);
    expect(reached).toBe(false);
  });

  it('a client without the grant, or not allowed the route\'s audience: 403', async () => {
    const { client: codeOnly, secret: codeSecret } = await serviceClient([API], { grantTypes: ['authorization_code'] });
    expect((await get('/api/x', serviceHeaders(codeOnly.id, codeSecret))).r.status).toBe(403);
    const { client: elsewhere, secret: elsewhereSecret } = await serviceClient(['https://reports.example.com']);
    const r = (await get('/api/x', serviceHeaders(elsewhere.id, elsewhereSecret))).r;
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden', error_description: expect.stringContaining('allowed audiences') });
  });

  it('refusals count against verify_failure per IP; over the limit they are 429, a good pair still passes', async () => {
    const keys: string[] = [];
    const limited = proxyEnv(ROUTES, { O: origin, RATE_LIMITER_VERIFY_FAILURE: { limit: async ({ key }: { key: string }) => (keys.push(key), { success: keys.length <= 2 }) } });
    const { client, secret } = await serviceClient([API]);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await get('/api/x', serviceHeaders(client.id, 'wrong'), limited)).r.status);
    expect(statuses).toEqual([401, 401, 429]);
    expect(keys).toEqual(['verify_failure:203.0.113.7', 'verify_failure:203.0.113.7', 'verify_failure:203.0.113.7']);
    expect((await get('/api/x', serviceHeaders(client.id, secret), limited)).r.status).toBe(200);
    expect(keys).toHaveLength(3);
  });
});

describe('a rotated secret', () => {
  it('both secrets pass during the overlap; after it the old one is refused, even where its token was kept', async () => {
    const old = 'the-old-secret'.padEnd(43, 'x');
    const overlapEnd = Math.floor(Date.now() / 1000) + 120;
    const { client, secret } = await serviceClient([API], { previousSecretHash: await sha256(old), previousSecretExpiresAt: overlapEnd });
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    expect((await get('/api/x', serviceHeaders(client.id, old))).r.status).toBe(200);

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime((overlapEnd + 1) * 1000);
    const after = await get('/api/x', serviceHeaders(client.id, old));
    expect(after.r.status).toBe(401);
    expect(after.reached).toBe(false);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
  });
});

describe('a disabled client', () => {
  it('its kept token is refused once the old epoch is revoked, and no new one is minted', async () => {
    const { client, secret } = await serviceClient([API]);
    expect((await get('/api/x', serviceHeaders(client.id, secret))).r.status).toBe(200);
    expect(await disableClient(baseEnv.DB, client.id, client.tokenEpoch, 'epoch2', Math.floor(Date.now() / 1000))).toBe(true);
    await revokeSessionIds(baseEnv.REVOKED, [serviceSessionId(client.id, client.tokenEpoch), clientRevocationKey(client.id, client.tokenEpoch)], 600);
    const { r, reached } = await get('/api/x', serviceHeaders(client.id, secret));
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
    expect(reached).toBe(false);
    expect(await issued(client.id)).toBe(1);
  });
});
