/**
 * Fault injection through the bindings: KV, D1, the users' sessions objects and the rate limiter
 * are wrapped so that their
 * calls throw the errors Cloudflare gives during an outage. Every refusal fails closed: 503
 * (or a bare 500 for a bug), JSON without internals, nothing let through, nothing lost.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { baseEnv, bearer, call, GOOD_PASSWORD, makeEnv, registerUser, revokedKeys, setCookies, stateSnapshot, type TestEnv, type TokenResponse } from '../support/helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { failingSessions, sessionRows } from '../support/user-sessions-store';

type Fn = (...args: unknown[]) => unknown;

/**
 * D1's sessions (`withSession`: reads a replica may serve) are the same binding: what breaks
 * D1 breaks them too.
 */
function sessionsAlike(target: object, prop: string | symbol, wrap: (session: object) => object): unknown {
  if (prop !== 'withSession') return undefined;
  const open = Reflect.get(target, prop) as unknown;
  return typeof open === 'function' ? (arg?: string) => wrap((open as Fn).call(target, arg) as object) : undefined;
}

/** A binding whose named methods throw `error`; everything else goes to the real one. */
function broken<T extends object>(real: T, methods: string[], error: () => Error): T {
  return new Proxy(real, {
    get(target, prop) {
      const session = sessionsAlike(target, prop, (s) => broken(s, methods, error));
      if (session) return session;
      if (typeof prop === 'string' && methods.includes(prop)) {
        return () => {
          throw error();
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
}

/** Like `broken`, but the failure is an async rejection (as the runtime really reports it). */
function rejecting<T extends object>(real: T, methods: string[], error: () => Error): T {
  return new Proxy(real, {
    get(target, prop) {
      const session = sessionsAlike(target, prop, (s) => rejecting(s, methods, error));
      if (session) return session;
      if (typeof prop === 'string' && methods.includes(prop)) return async () => Promise.reject(error());
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
}

const kvDown = () => new Error('KV GET failed: 503 Service Unavailable');
const kvPutDown = () => new Error('KV PUT failed: 500 Internal Server Error');
const d1Down = () => new Error('D1_ERROR: Network connection lost. SELECT * FROM users WHERE email = ?');

/** The response must be the JSON error and must not leak what broke. */
async function expectFailClosed(r: Response, status: 503 | 500, code: 'unavailable' | 'server_error') {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toContain('application/json');
  if (status === 503) expect(r.headers.get('retry-after')).toBe('5');
  const text = await r.text();
  expect(JSON.parse(text).error).toBe(code);
  expect(text).not.toMatch(/D1|KV|SELECT|sql|Network connection|stack|at \w+ \(/i);
  return text;
}

describe('KV (revocation list) down', () => {
  it('on a protected gateway route: 503, nothing served', async () => {
    const user = await registerUser();
    for (const kv of [broken(baseEnv.REVOKED, ['get'], kvDown), rejecting(baseEnv.REVOKED, ['get'], kvDown)]) {
      const env = makeEnv({ REVOKED: kv });
      await expectFailClosed(await call('/auth/me', { env, headers: bearer(user.access_token) }), 503, 'unavailable');
      await expectFailClosed(await call('/auth/sessions', { env, headers: bearer(user.access_token) }), 503, 'unavailable');
      await expectFailClosed(await call('/auth/verify', { env, headers: bearer(user.access_token) }), 503, 'unavailable');
    }
  });

  it('on a proxied route: 503 and the origin is never called, even for a valid token; optional routes do not let the token through either', async () => {
    const origin = recordingOrigin();
    const routes = [
      { path: '/app', origin: 'service:ORIGIN', auth: 'required' },
      { path: '/maybe', origin: 'service:ORIGIN', auth: 'optional' },
    ];
    // 0: the good request must not leave a cached "not revoked" answer (within its window, a
    // session this isolate already checked is served from the cache, outage or not).
    const good = proxyEnv(routes, { ORIGIN: origin, REVOCATION_CACHE_SECONDS: '0' });
    const { cookies } = await cookieSession(good);
    expect((await call('/app/x', { env: good, cookies })).status).toBe(200);
    expect(origin.seen).toHaveLength(1);

    const env = proxyEnv(routes, { ORIGIN: origin, REVOKED: rejecting(baseEnv.REVOKED, ['get'], kvDown) });
    await expectFailClosed(await call('/app/x', { env, cookies }), 503, 'unavailable');
    await expectFailClosed(await call('/maybe/x', { env, cookies }), 503, 'unavailable');
    expect(origin.seen).toHaveLength(1);
  });

  it('KV write fails on logout: cookies are cleared and the answer is a 5xx, never a silent success; a retry completes it', async () => {
    const env = makeEnv({ REVOKED: rejecting(baseEnv.REVOKED, ['put'], kvPutDown) });
    const { cookies } = await cookieSession(makeEnv());
    const r = await call('/auth/logout', { env, method: 'POST', cookies, headers: { 'sec-fetch-site': 'same-origin' } });
    await expectFailClosed(r, 503, 'unavailable');
    const jar = setCookies(r);
    expect(jar.get('__Host-gatehouse')?.value).toBe('');
    expect(jar.get('__Host-gatehouse')?.attributes).toMatch(/Max-Age=0/i);
    expect(jar.get('__Secure-gatehouse-refresh')?.value).toBe('');

    // The client retries once KV is back: the session really ends.
    const retry = await call('/auth/logout', { method: 'POST', cookies, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(retry.status).toBe(200);
    expect((await call('/auth/me', { cookies })).status).toBe(401);
  });

  it('KV write fails on logout-all and on an admin disable: 5xx, and the retry still revokes every session in KV', async () => {
    const admin = await registerUser();
    await baseEnv.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(admin.user.id).run();
    const target = await registerUser();
    const env = makeEnv({ REVOKED: rejecting(baseEnv.REVOKED, ['put'], kvPutDown) });
    await expectFailClosed(await call('/auth/logout-all', { env, method: 'POST', headers: bearer(target.access_token) }), 503, 'unavailable');
    await expectFailClosed(await call(`/auth/admin/users/${target.user.id}/disable`, { env, method: 'POST', headers: bearer(admin.access_token) }), 503, 'unavailable');
    const ok = await call(`/auth/admin/users/${target.user.id}/disable`, { method: 'POST', headers: bearer(admin.access_token) });
    expect(ok.status).toBe(200);
    const results = await sessionRows<{ id: string }>('SELECT id FROM sessions WHERE user_id = ?', [target.user.id]);
    const keys = await revokedKeys();
    for (const { id } of results) expect(keys).toContain(`sid:${id}`);
    expect((await call('/auth/me', { headers: bearer(target.access_token) })).status).toBe(401);
  });
});

/** D1 in an outage: every statement and batch rejects, as the runtime reports it. */
function d1Outage<T extends D1Database | D1DatabaseSession>(real: T): T {
  const statement = (): D1PreparedStatement => {
    const fail = async () => Promise.reject(d1Down());
    const stmt = { bind: () => stmt, first: fail, all: fail, run: fail, raw: fail } as unknown as D1PreparedStatement;
    return stmt;
  };
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'prepare') return statement;
      if (prop === 'batch' || prop === 'exec') return async () => Promise.reject(d1Down());
      if (prop === 'withSession') return (arg?: string) => d1Outage((target as D1Database).withSession(arg));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
}

describe('D1 down', () => {
  const cases: [string, (env: TestEnv, user: TokenResponse) => Promise<Response>][] = [
    ['sign-in', (env, user) => call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } })],
    ['sign-in form', (env, user) => call('/auth/login', { env, form: { email: user.user.email, password: GOOD_PASSWORD }, headers: { 'sec-fetch-site': 'same-origin' } })],
    ['registration', (env) => call('/auth/register', { env, json: { email: `d1-${Date.now()}@example.com`, password: GOOD_PASSWORD } })],
    ['refresh', (env, user) => call('/auth/refresh', { env, json: { refresh_token: user.refresh_token } })],
    ['status', (env, user) => call('/auth/me', { env, headers: bearer(user.access_token) })],
    ['account page', (env, user) => call('/auth/account', { env, headers: bearer(user.access_token) })],
    ['admin', (env, user) => call('/auth/admin/users', { env, headers: bearer(user.access_token) })],
  ];

  for (const [name, request] of cases) {
    it(`${name}: 503 JSON without internals, no session cookie, nothing changed in D1`, async () => {
      const user = await registerUser();
      const before = await stateSnapshot();
      for (const db of [d1Outage(baseEnv.DB), broken(baseEnv.DB, ['prepare', 'batch'], d1Down)]) {
        const r = await request(makeEnv({ DB: db }), user);
        await expectFailClosed(r, 503, 'unavailable');
        expect(setCookies(r).get('__Host-gatehouse')?.value ?? '').toBe('');
      }
      expect(await stateSnapshot()).toEqual(before);
    });
  }


  it('an unexpected error (a bug, not an outage) is a bare 500 server_error, logged for the operator only', async () => {
    const user = await registerUser();
    const error = vi.spyOn(console, 'error');
    const env = makeEnv({ DB: broken(baseEnv.DB, ['prepare'], () => new TypeError("Cannot read properties of undefined (reading 'secret_column')")) });
    const text = await expectFailClosed(await call('/auth/me', { env, headers: bearer(user.access_token) }), 500, 'server_error');
    expect(text).not.toContain('secret_column');
    expect(error.mock.calls.map((c) => String(c[0])).some((l) => l.includes('secret_column'))).toBe(true);
    error.mockRestore();
  });
});

describe("the user's sessions object unreachable", () => {
  const cases: [string, (env: TestEnv, user: TokenResponse) => Promise<Response>][] = [
    ['sign-in', (env, user) => call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } })],
    ['refresh', (env, user) => call('/auth/refresh', { env, json: { refresh_token: user.refresh_token } })],
    ['session list', (env, user) => call('/auth/sessions', { env, headers: bearer(user.access_token) })],
    ['logout', (env, user) => call('/auth/logout', { env, method: 'POST', headers: bearer(user.access_token) })],
    ['logout-all', (env, user) => call('/auth/logout-all', { env, method: 'POST', headers: bearer(user.access_token) })],
    ['end one session', (env, user) => call(`/auth/sessions/${decodeJwt<{ sid: string }>(user.access_token).sid}`, { env, method: 'DELETE', headers: bearer(user.access_token) })],
    ['status', (env, user) => call('/auth/me', { env, headers: bearer(user.access_token) })],
  ];

  for (const [name, request] of cases) {
    it(`${name}: 503 JSON without internals, no session cookie, nothing changed`, async () => {
      const user = await registerUser();
      const before = await stateSnapshot();
      const r = await request(makeEnv({ USER_SESSIONS: failingSessions() }), user);
      await expectFailClosed(r, 503, 'unavailable');
      expect(setCookies(r).get('__Host-gatehouse')?.value ?? '').toBe('');
      expect(await stateSnapshot()).toEqual(before);
    });
  }

  it('refresh: the refresh token is not lost (it still works afterwards)', async () => {
    const user = await registerUser();
    await expectFailClosed(await call('/auth/refresh', { env: makeEnv({ USER_SESSIONS: failingSessions() }), json: { refresh_token: user.refresh_token } }), 503, 'unavailable');
    expect((await call('/auth/refresh', { json: { refresh_token: user.refresh_token } })).status).toBe(200);
  });

  it('refresh when D1 cannot read the account: 503 before anything rotates (the token still works afterwards)', async () => {
    const user = await registerUser();
    await expectFailClosed(await call('/auth/refresh', { env: makeEnv({ DB: d1Outage(baseEnv.DB) }), json: { refresh_token: user.refresh_token } }), 503, 'unavailable');
    expect((await call('/auth/refresh', { json: { refresh_token: user.refresh_token } })).status).toBe(200);
  });
});

describe('rate limiter down', () => {
  it('sign-in, registration and refresh answer 503 and create nothing (fail closed)', async () => {
    const user = await registerUser();
    const limiter = { limit: async () => Promise.reject(new Error('rate limiter unreachable')) };
    const env = makeEnv({ RATE_LIMITER: limiter });
    const before = await stateSnapshot();
    await expectFailClosed(await call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } }), 503, 'unavailable');
    await expectFailClosed(await call('/auth/register', { env, json: { email: `rl-${Date.now()}@example.com`, password: GOOD_PASSWORD } }), 503, 'unavailable');
    await expectFailClosed(await call('/auth/refresh', { env, json: { refresh_token: user.refresh_token } }), 503, 'unavailable');
    expect(await stateSnapshot()).toEqual(before);
    // Already signed-in users are unaffected: verification does not use the limiter.
    expect((await call('/auth/me', { env, headers: bearer(user.access_token) })).status).toBe(200);
  });
});
