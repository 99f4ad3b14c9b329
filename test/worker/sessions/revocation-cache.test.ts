/**
 * Revocation at memory speed, with honest bounds: each isolate reuses a "not
 * revoked" answer per session for REVOCATION_CACHE_SECONDS; the isolate that revokes refuses at
 * once; another isolate (simulated by writing `sid:` to KV directly, as its logout would)
 * refuses once its window has passed. /auth/verify and the proxy read no D1 session row, so a
 * refusal there is the revocation check's alone. Time is moved with a mocked Date.now, never waited for.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { isSessionRevoked, KV_CACHE_TTL, REVOCATION_CACHE_MAX_ENTRIES, revocationCacheSize } from '../../../src/storage/revocation';
import { baseEnv, bearer, call, makeEnv, registerUser, testKey, type TestEnv, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

const ROUTES = JSON.stringify([{ path: '/app', origin: 'service:ORIGIN', auth: 'required' }]);
const origin = recordingOrigin();
const REVOKED = { error: 'invalid_token', error_description: 'The access token has been revoked.' };
const sidOf = (t: TokenResponse) => decodeJwt<{ sid: string }>(t.access_token).sid;

interface KvReads {
  /** `get` calls, and the options each was given. */
  calls: unknown[][];
}

/** The real REVOKED namespace, counting reads; `blind` makes every read answer "no such key" (a stale KV cache). */
function countingKv(real: KVNamespace, reads: KvReads, blind = false): KVNamespace {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'get') {
        return async (...args: unknown[]) => {
          reads.calls.push(args);
          if (blind) return null;
          return (target.get as (...a: unknown[]) => Promise<unknown>)(...args);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function gatewayEnv(settings: Record<string, unknown> = {}, blind = false): { env: TestEnv; reads: KvReads } {
  const reads: KvReads = { calls: [] };
  return { env: makeEnv({ ROUTES, ORIGIN: origin, REVOKED: countingKv(baseEnv.REVOKED, reads, blind), ...settings }), reads };
}

const verify = (e: TestEnv, token: string) => call('/auth/verify', { env: e, headers: { ...bearer(token), 'x-original-uri': '/app/x' } });
const proxied = (e: TestEnv, token: string) => call('/app/x', { env: e, headers: { ...bearer(token), accept: 'application/json' } });

/** What another isolate's logout leaves behind: the `sid:` key in KV, and nothing in this isolate. */
const revokeElsewhere = (sid: string) => env.REVOKED.put(`sid:${sid}`, '1', { expirationTtl: 700 });

/** Moves this isolate's clock forward (the window is measured with Date.now). */
function advance(ms: number) {
  const real = Date.now();
  vi.spyOn(Date, 'now').mockReturnValue(real + ms);
}

afterEach(() => vi.restoreAllMocks());

describe('the isolate that revokes refuses at once', () => {
  it('after POST /auth/logout the next request is refused here even though KV (blind) still answers "not revoked"', async () => {
    const { env: e, reads } = gatewayEnv({}, true);
    const t = await registerUser(undefined, undefined, e);
    expect((await verify(e, t.access_token)).status).toBe(200); // a "not revoked" answer is now cached
    expect((await proxied(e, t.access_token)).status).toBe(200);
    expect((await call('/auth/logout', { env: e, method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    const readsBefore = reads.calls.length;
    const refused = await verify(e, t.access_token);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual(REVOKED);
    const viaProxy = await proxied(e, t.access_token);
    expect(viaProxy.status).toBe(401);
    expect(await viaProxy.json()).toMatchObject({ error: 'invalid_token' });
    // Refused from this isolate's own record: KV was not even asked.
    expect(reads.calls.length).toBe(readsBefore);
  });

  it('logout-all refuses every session of the user here at once, with KV blind', async () => {
    const { env: e } = gatewayEnv({}, true);
    const a = await registerUser(undefined, undefined, e);
    const login = await call('/auth/login', { env: e, json: { email: a.user.email, password: 'correct horse battery staple' } });
    const b = (await login.json()) as TokenResponse;
    expect((await verify(e, b.access_token)).status).toBe(200);
    expect((await call('/auth/logout-all', { env: e, method: 'POST', headers: bearer(a.access_token) })).status).toBe(200);
    expect((await verify(e, b.access_token)).status).toBe(401);
    expect((await verify(e, a.access_token)).status).toBe(401);
  });
});

describe('another isolate refuses when its window has passed', () => {
  it(`within REVOCATION_CACHE_SECONDS (default 10) a revocation written elsewhere still passes here (the documented bound); after it, refused`, async () => {
    const { env: e, reads } = gatewayEnv();
    const t = await registerUser(undefined, undefined, e);
    expect((await verify(e, t.access_token)).status).toBe(200);
    expect(reads.calls).toHaveLength(1);
    await revokeElsewhere(sidOf(t));
    advance(9_000);
    expect((await verify(e, t.access_token)).status).toBe(200); // the bound: this isolate has not looked yet
    expect(reads.calls).toHaveLength(1);
    advance(10_001);
    const r = await verify(e, t.access_token);
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual(REVOKED);
    expect(reads.calls).toHaveLength(2);
    // The refusal is kept too: no KV read for the next replay of the token.
    expect((await proxied(e, t.access_token)).status).toBe(401);
    expect(reads.calls).toHaveLength(2);
  });

  it('every read asks KV to keep its answer no longer than its 30 s minimum (cacheTtl)', async () => {
    const { env: e, reads } = gatewayEnv();
    const t = await registerUser(undefined, undefined, e);
    expect((await verify(e, t.access_token)).status).toBe(200);
    expect(KV_CACHE_TTL).toBe(30);
    expect(reads.calls).toEqual([[`sid:${sidOf(t)}`, { type: 'text', cacheTtl: 30 }]]);
  });
});

describe('KV reads per verified request', () => {
  it('steady state: 0 within the window (after the first), across the session\'s access-token rotations too', async () => {
    const { env: e, reads } = gatewayEnv();
    const t = await registerUser(undefined, undefined, e);
    for (let i = 0; i < 20; i++) expect((await proxied(e, t.access_token)).status).toBe(200);
    expect(reads.calls).toHaveLength(1);
    const rotated = (await (await call('/auth/refresh', { env: e, json: { refresh_token: t.refresh_token } })).json()) as TokenResponse;
    expect(sidOf(rotated)).toBe(sidOf(t));
    expect(rotated.access_token).not.toBe(t.access_token);
    for (let i = 0; i < 20; i++) expect((await verify(e, rotated.access_token)).status).toBe(200);
    expect(reads.calls).toHaveLength(1); // one key per session, whatever the token
    advance(10_001);
    expect((await verify(e, rotated.access_token)).status).toBe(200);
    expect(reads.calls).toHaveLength(2); // ≤ 1 read outside the window
  });

  it('REVOCATION_CACHE_SECONDS=0: every request reads KV (one key), and a revocation written elsewhere is refused on the next request', async () => {
    const { env: e, reads } = gatewayEnv({ REVOCATION_CACHE_SECONDS: '0' });
    const t = await registerUser(undefined, undefined, e);
    for (let i = 0; i < 5; i++) expect((await verify(e, t.access_token)).status).toBe(200);
    expect(reads.calls).toHaveLength(5);
    expect(reads.calls.every((args) => args[0] === `sid:${sidOf(t)}`)).toBe(true);
    await revokeElsewhere(sidOf(t));
    const r = await verify(e, t.access_token);
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual(REVOKED);
  });
});

describe('KV read failure', () => {
  it('is a 503, never a pass, and is not cached: the next request reads KV again and passes', async () => {
    const t = await registerUser();
    const down = makeEnv({
      ROUTES,
      ORIGIN: origin,
      REVOKED: new Proxy(baseEnv.REVOKED, {
        get(target, prop) {
          if (prop === 'get') return async () => Promise.reject(new Error('KV GET failed: 503 Service Unavailable'));
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }),
    });
    for (let i = 0; i < 2; i++) {
      const r = await verify(down, t.access_token);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ error: 'unavailable' });
    }
    const { env: e, reads } = gatewayEnv();
    expect((await verify(e, t.access_token)).status).toBe(200);
    expect(reads.calls).toHaveLength(1);
  });
});

describe('REVOCATION_CACHE_SECONDS validation', () => {
  const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: JSON.stringify({ keys: [testKey] }) };

  it('defaults to 10 and accepts 0 to 60', () => {
    const parsed = (value?: string) => {
      const r = parseConfig(value === undefined ? base : { ...base, REVOCATION_CACHE_SECONDS: value });
      if (!r.ok) throw new Error(r.error.message);
      return r.config.REVOCATION_CACHE_SECONDS;
    };
    expect(parsed()).toBe(10);
    expect(parsed('0')).toBe(0);
    expect(parsed('60')).toBe(60);
  });

  it.each([['ten', 'whole number of seconds'], ['1.5', 'whole number of seconds'], ['-1', 'at least 0'], ['61', 'at most 60']])(
    'a bad value (%s) is a configuration_error naming REVOCATION_CACHE_SECONDS',
    async (value, message) => {
      const r = await call('/auth/health', { env: makeEnv({ REVOCATION_CACHE_SECONDS: value }) });
      expect(r.status).toBe(500);
      const body = (await r.json()) as { error: string; setting: string; error_description: string };
      expect(body).toMatchObject({ error: 'configuration_error', setting: 'REVOCATION_CACHE_SECONDS' });
      expect(body.error_description).toContain(message);
    },
  );
});

describe('the cache is bounded', () => {
  it(`holds at most REVOCATION_CACHE_MAX_ENTRIES passes; past that the least recently renewed is evicted (read from KV again)`, async () => {
    const reads: KvReads = { calls: [] };
    const kv = countingKv(baseEnv.REVOKED, reads, true);
    const check = { cacheSeconds: 60, tokenExpiresAt: Math.floor(Date.now() / 1000) + 600 };
    const first = `bound-${crypto.randomUUID()}`;
    expect(await isSessionRevoked(kv, first, check)).toBe(false);
    expect(await isSessionRevoked(kv, first, check)).toBe(false);
    expect(reads.calls).toHaveLength(1); // cached
    for (let i = 0; i < REVOCATION_CACHE_MAX_ENTRIES; i++) await isSessionRevoked(kv, `bound-${i}`, check);
    expect(revocationCacheSize().passes).toBe(REVOCATION_CACHE_MAX_ENTRIES);
    const before = reads.calls.length;
    expect(await isSessionRevoked(kv, first, check)).toBe(false);
    expect(reads.calls.length).toBe(before + 1); // evicted: KV was read again
    expect(revocationCacheSize().passes).toBe(REVOCATION_CACHE_MAX_ENTRIES);
  });
});
