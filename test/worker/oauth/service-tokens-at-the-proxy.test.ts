/**
 * A service's own token (client credentials) at the built-in proxy: admitted only by a route
 * whose policy names services (`caller = ["service"]`, `client = [...]`), only with the route's
 * resource identifier as its audience, with every fact of a person unknown; the origin sees the
 * client (`X-Auth-Client-Id`, a service assertion) and nothing of a person; and disabling the
 * client refuses its tokens within the revocation bounds.
 */
import { env as baseEnv } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { disableClient } from '../../../src/storage/oauth-clients';
import { revokeSessionIds } from '../../../src/storage/revocation';
import { clientRevocationKey, serviceSessionId } from '../../../src/tokens/grant-token';
import { bearer, call, PUBLIC_URL, registerUser } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { serviceClient, serviceToken } from '../support/service-clients';

const REPORTER = 'cli_reporter';
const origin = recordingOrigin();
/** An external decision service that allows, recording what it was asked. */
const asked: Record<string, unknown>[] = [];
const decider = {
  async fetch(input: RequestInfo | URL, init?: RequestInit) {
    asked.push(await new Request(input, init).json());
    return Response.json({ allow: true });
  },
};
const url = (path: string) => `${PUBLIC_URL}${path}`;
const env = proxyEnv(
  [
    { path: '/api', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'], client: [REPORTER] }, { roles: ['ops'] }] } },
    { path: '/any-service', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'] }] } },
    { path: '/people', origin: 'service:O', auth: 'required' },
    { path: '/get-only', origin: 'service:O', auth: 'required', policy: { allow: [{ method: ['GET'] }] } },
    { path: '/deny-email', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'] }], deny: [{ email: ['mallory@example.com'] }] } },
    { path: '/deny-person-email', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'] }], deny: [{ caller: ['person'], email: ['mallory@example.com'] }] } },
    { path: '/step-up', origin: 'service:O', auth: 'required', require: ['mfa'], policy: { allow: [{ caller: ['service'] }] } },
    { path: '/aud', origin: 'service:O', auth: 'required', audience: 'https://reports.internal', policy: { allow: [{ caller: ['service'] }] } },
    { path: '/now', origin: 'service:O', auth: 'required', revocation: 'immediate', policy: { allow: [{ caller: ['service'] }] } },
    { path: '/open', origin: 'service:O', auth: 'public' },
    { path: '/decided', origin: 'service:O', auth: 'required', policy: { allow: [{ caller: ['service'] }], external: 'service:DECIDER' } },
  ],
  { O: origin, DECIDER: decider },
);

/** The origin's view of the last request it got. */
const lastSeen = () => origin.seen.at(-1)!;

async function get(path: string, headers: Record<string, string>) {
  const before = origin.seen.length;
  const r = await call(path, { env, headers });
  return { r, reached: origin.seen.length > before };
}

describe('a route whose policy names services', () => {
  it('passes the named client; the origin sees X-Auth-Client-Id and a service assertion, nothing of a person, not the token', async () => {
    const { client, secret } = await serviceClient([url('/api')], { id: REPORTER });
    const token = await serviceToken(env, client, secret, url('/api'));
    const { r, reached } = await get('/api/reports', { ...bearer(token), 'x-auth-client-id': 'cli_forged', 'x-auth-user-id': 'usr_forged', 'x-auth-email': 'ceo@example.com' });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(reached).toBe(true);
    const seen = lastSeen().headers;
    expect(seen['x-auth-client-id']).toBe(REPORTER);
    expect(Object.keys(seen).filter((h) => h.startsWith('x-auth-')).sort()).toEqual(['x-auth-assertion', 'x-auth-client-id']);
    expect(seen.authorization).toBeUndefined();
    const assertion = decodeJwt(seen['x-auth-assertion']!);
    expect(assertion).toEqual({
      iss: PUBLIC_URL,
      aud: 'service:O',
      sub: REPORTER,
      client_id: REPORTER,
      svc: true,
      scope: 'reports:read reports:write',
      sid: `svc:${REPORTER}:${client.tokenEpoch}`,
      iat: expect.any(Number),
      exp: (assertion.iat as number) + 60,
    });
  });

  it('refuses a client the policy does not name (403), admits any service where caller = "service" alone', async () => {
    const { client, secret } = await serviceClient([url('/api'), url('/any-service')]);
    const forApi = await serviceToken(env, client, secret, url('/api'));
    const refused = await get('/api/x', bearer(forApi));
    expect(refused.r.status).toBe(403);
    expect(await refused.r.json()).toEqual({ error: 'forbidden', error_description: expect.any(String) });
    expect(refused.reached).toBe(false);
    const anyService = await get('/any-service/x', bearer(await serviceToken(env, client, secret, url('/any-service'))));
    expect(anyService.r.status).toBe(200);
    expect(lastSeen().headers['x-auth-client-id']).toBe(client.id);
  });

  it('a person passes only by a rule for people: caller "service" and client are false for a person', async () => {
    const person = await registerUser(undefined, undefined, env);
    expect((await get('/any-service/x', bearer(person.access_token))).r.status).toBe(403);
    expect((await get('/api/x', bearer(person.access_token))).r.status).toBe(403);
  });
});

describe('a route that does not admit services refuses a service token (403)', () => {
  it('no policy; a policy whose rules are for people (method = ["GET"] alone); a route that asks for a second factor', async () => {
    for (const path of ['/people', '/get-only', '/step-up']) {
      const { client, secret } = await serviceClient([url(path)]);
      const { r, reached } = await get(`${path}/x`, bearer(await serviceToken(env, client, secret, url(path))));
      expect(r.status, path).toBe(403);
      expect(await r.json(), path).toEqual({ error: 'forbidden', error_description: 'This route does not admit services.' });
      expect(reached, path).toBe(false);
    }
  });
});

describe('the audience of a service token is the route\'s resource identifier', () => {
  it('a token for one route is refused on another that admits services (401), and the route\'s audience setting is not its audience', async () => {
    const { client, secret } = await serviceClient([url('/any-service'), url('/aud'), 'https://reports.internal']);
    const forAnyService = await serviceToken(env, client, secret, url('/any-service'));
    const other = await get('/aud/x', bearer(forAnyService));
    expect(other.r.status).toBe(401);
    expect(await other.r.json()).toMatchObject({ error: 'invalid_token' });
    const forAssertionAudience = await serviceToken(env, client, secret, 'https://reports.internal');
    expect((await get('/aud/x', bearer(forAssertionAudience))).r.status).toBe(401);
    const right = await get('/aud/x', bearer(await serviceToken(env, client, secret, url('/aud'))));
    expect(right.r.status).toBe(200);
    // The assertion is for the origin: the route's audience setting.
    expect(decodeJwt(lastSeen().headers['x-auth-assertion']!).aud).toBe('https://reports.internal');
  });
});

describe('a person\'s facts are unknown for a service', () => {
  it('a deny on an email refuses a service (unknown fails closed); one that requires caller = "person" does not', async () => {
    const { client, secret } = await serviceClient([url('/deny-email'), url('/deny-person-email')]);
    expect((await get('/deny-email/x', bearer(await serviceToken(env, client, secret, url('/deny-email'))))).r.status).toBe(403);
    expect((await get('/deny-person-email/x', bearer(await serviceToken(env, client, secret, url('/deny-person-email'))))).r.status).toBe(200);
  });
});

describe('the request log', () => {
  afterEach(() => vi.restoreAllMocks());

  it('names the client of a service\'s request, allowed or refused', async () => {
    const { client, secret } = await serviceClient([url('/any-service'), url('/people')]);
    const lines: Record<string, unknown>[] = [];
    for (const level of ['log', 'warn', 'error'] as const) vi.spyOn(console, level).mockImplementation((line: unknown) => void lines.push(JSON.parse(String(line))));
    await get('/any-service/x', bearer(await serviceToken(env, client, secret, url('/any-service'))));
    await get('/people/x', bearer(await serviceToken(env, client, secret, url('/people'))));
    const requests = lines.filter((l) => l.event === 'request' && String(l.path).startsWith('/'));
    expect(requests.filter((l) => l.route !== '/auth/token').map((l) => [l.path, l.status, l.client_id, l.user_id])).toEqual([
      ['/any-service/x', 200, client.id, null],
      ['/people/x', 403, client.id, null],
    ]);
  });
});

describe('an external decision', () => {
  it('is told the caller is a service, its client and scope, nothing of a person', async () => {
    const { client, secret } = await serviceClient([url('/decided')]);
    expect((await get('/decided/x', bearer(await serviceToken(env, client, secret, url('/decided'))))).r.status).toBe(200);
    expect(asked.at(-1)!.identity).toEqual({ caller: 'service', sub: client.id, client_id: client.id, scope: 'reports:read reports:write', session_id: `svc:${client.id}:${client.tokenEpoch}` });
  });
});

describe('a public route', () => {
  it('passes a service token on without reading it, and drops it (it is ours), as a person\'s', async () => {
    const { client, secret } = await serviceClient([url('/any-service')]);
    const token = await serviceToken(env, client, secret, url('/any-service'));
    const { r } = await get('/open/x', { ...bearer(token), 'x-auth-client-id': 'cli_forged' });
    expect(r.status).toBe(200);
    expect(lastSeen().headers.authorization).toBeUndefined();
    expect(lastSeen().headers['x-auth-client-id']).toBeUndefined();
  });
});

describe('a client sent X-Auth-Client-Id never reaches the origin', () => {
  it('on a person\'s request', async () => {
    const person = await registerUser(undefined, undefined, env);
    const { r } = await get('/people/x', { ...bearer(person.access_token), 'x-auth-client-id': 'cli_forged', 'X_Auth_Client_Id': 'cli_forged2' });
    expect(r.status).toBe(200);
    expect(Object.keys(lastSeen().headers).filter((h) => h.includes('client'))).toEqual([]);
  });
});

describe('a disabled client', () => {
  it('its tokens are refused once the old epoch is revoked (KV), and at once on a revocation = "immediate" route', async () => {
    const { client, secret } = await serviceClient([url('/any-service'), url('/now')]);
    const cached = await serviceToken(env, client, secret, url('/any-service'));
    const immediate = await serviceToken(env, client, secret, url('/now'));
    expect((await get('/any-service/x', bearer(cached))).r.status).toBe(200);
    expect((await get('/now/x', bearer(immediate))).r.status).toBe(200);

    // Disabled in D1 only: the immediate route asks the clients table and refuses at once.
    expect(await disableClient(baseEnv.DB, client.id, client.tokenEpoch, 'epoch2', Math.floor(Date.now() / 1000))).toBe(true);
    const now = await get('/now/x', bearer(immediate));
    expect(now.r.status).toBe(401);
    expect(await now.r.json()).toMatchObject({ error: 'invalid_token' });

    // The revocation of the old epoch's keys reaches the cached route.
    await revokeSessionIds(baseEnv.REVOKED, [serviceSessionId(client.id, client.tokenEpoch), clientRevocationKey(client.id, client.tokenEpoch)], 600);
    const later = await get('/any-service/x', bearer(cached));
    expect(later.r.status).toBe(401);
    expect(later.reached).toBe(false);
    // And no new token.
    const again = await call('/auth/token', { env, form: { grant_type: 'client_credentials' }, headers: { authorization: `Basic ${btoa(`${client.id}:${secret}`)}` } });
    expect(again.status).toBe(401);
  });
});
