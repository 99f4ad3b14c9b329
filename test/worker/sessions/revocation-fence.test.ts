/**
 * Immediate revocation where a route needs it: the fence is each user's sessions object (the
 * real one, in workerd). A route marked `revocation = "immediate"` asks it on every request, so
 * a session ended anywhere is refused on the next request, whatever this isolate's cache and KV
 * still say; a "cached" route keeps its window. Refresh rotates in the same object. Every
 * revocation writes it first; a fault there is a 503, never a pass. "Another isolate" is
 * simulated by ending the session in the object only (through its binding).
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { bearer, call, GOOD_PASSWORD, makeEnv, registerUser, type TestEnv, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { failingSessions as failingFence, sessionsObject } from '../support/user-sessions-store';

const ROUTES = JSON.stringify([
  { path: '/now', origin: 'service:ORIGIN', auth: 'required', revocation: 'immediate' },
  { path: '/app', origin: 'service:ORIGIN', auth: 'required' },
]);
const origin = recordingOrigin();
const REVOKED = { error: 'invalid_token', error_description: 'The access token has been revoked.' };
const claimsOf = (t: TokenResponse) => decodeJwt<{ sid: string; sub: string }>(t.access_token);

/** The real REVOKED namespace, except that every read answers "no such key" (a stale KV cache elsewhere). */
function blindKv(real: KVNamespace): KVNamespace {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'get') return async () => null;
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const gatewayEnv = (overrides: Record<string, unknown> = {}): TestEnv => makeEnv({ ROUTES, ORIGIN: origin, ...overrides });
const realEnv = gatewayEnv();

const get = (e: TestEnv, path: string, token: string) => call(path, { env: e, headers: { ...bearer(token), accept: 'application/json' } });
const verify = (e: TestEnv, uri: string, token: string) => call('/auth/verify', { env: e, headers: { ...bearer(token), 'x-original-uri': uri } });
const refresh = (e: TestEnv, t: TokenResponse) => call('/auth/refresh', { env: e, json: { refresh_token: t.refresh_token } });

/** Another isolate's revocation: the session ended in the user's object only, nothing in KV or this isolate. */
async function fenceElsewhere(t: TokenResponse) {
  const { sub, sid } = claimsOf(t);
  await sessionsObject(sub).end(sub, [sid], Math.floor(Date.now() / 1000));
}
async function fenceHolds(t: TokenResponse): Promise<boolean> {
  const { sub, sid } = claimsOf(t);
  return sessionsObject(sub).isRevoked(sub, sid);
}
const kvHolds = async (t: TokenResponse) => (await env.REVOKED.get(`sid:${claimsOf(t).sid}`)) !== null;
const sessionEndedInObject = async (t: TokenResponse) => {
  const { sub, sid } = claimsOf(t);
  return (await sessionsObject(sub).find(sub, 'id', sid))?.revokedAt !== null;
};

afterEach(() => clearRevocationCache());

describe('a route marked revocation = "immediate"', () => {
  it('refuses a revocation written elsewhere on the very next request, while a "cached" route still passes within its window', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    // Both routes pass, and this isolate now caches "not revoked" for the session.
    expect((await get(realEnv, '/now/x', t.access_token)).status).toBe(200);
    expect((await get(realEnv, '/app/x', t.access_token)).status).toBe(200);
    await fenceElsewhere(t);
    const refused = await get(realEnv, '/now/x', t.access_token);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual(REVOKED);
    const viaVerify = await verify(realEnv, '/now/x', t.access_token);
    expect(viaVerify.status).toBe(401);
    expect(await viaVerify.json()).toEqual(REVOKED);
    // The cached route answers from this isolate's window (KV holds nothing yet): documented bound.
    expect((await get(realEnv, '/app/x', t.access_token)).status).toBe(200);
    expect((await verify(realEnv, '/app/x', t.access_token)).status).toBe(200);
  });

  it('after POST /auth/logout, refuses the token in an isolate that holds nothing and reads a blind KV', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    expect((await call('/auth/logout', { env: realEnv, method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    expect(await fenceHolds(t)).toBe(true);
    // "Another isolate": nothing cached, and its KV reads are stale.
    clearRevocationCache();
    const elsewhere = gatewayEnv({ REVOKED: blindKv(env.REVOKED) });
    const refused = await get(elsewhere, '/now/x', t.access_token);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual(REVOKED);
    expect((await get(elsewhere, '/app/x', t.access_token)).status).toBe(200);
  });

  it('answers 503 when the fence fails, never a pass; the "cached" route is unaffected', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const broken = gatewayEnv({ USER_SESSIONS: failingFence() });
    for (const res of [await get(broken, '/now/x', t.access_token), await verify(broken, '/now/x', t.access_token)]) {
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'unavailable' });
    }
    expect((await get(broken, '/app/x', t.access_token)).status).toBe(200);
    expect((await verify(broken, '/app/x', t.access_token)).status).toBe(200);
  });
});

describe('refresh consults the fence before rotating', () => {
  it('refuses a refresh token whose session was revoked in the fence only (D1 and KV not yet written)', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    await fenceElsewhere(t);
    const res = await refresh(realEnv, t);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('answers 503 when the fence fails, and rotates nothing (the same refresh token works afterwards)', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const res = await refresh(gatewayEnv({ USER_SESSIONS: failingFence() }), t);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect((await refresh(realEnv, t)).status).toBe(200);
  });
});

describe('revocations write the fence first', () => {
  it('sign-out with a failing fence write: 503 and nothing else done; the retry completes it', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const calls: string[] = [];
    const res = await call('/auth/logout', { env: gatewayEnv({ USER_SESSIONS: failingFence(calls) }), method: 'POST', headers: bearer(t.access_token) });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect(calls).toEqual(['end']);
    expect(await kvHolds(t)).toBe(false);
    expect(await sessionEndedInObject(t)).toBe(false);
    expect((await get(realEnv, '/app/x', t.access_token)).status).toBe(200);
    // The retry, with the fence back.
    expect((await call('/auth/logout', { env: realEnv, method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    expect(await fenceHolds(t)).toBe(true);
    expect(await kvHolds(t)).toBe(true);
    expect(await sessionEndedInObject(t)).toBe(true);
  });

  it('logout-all with a failing fence write: 503 and no session ended; with the fence, every session is fenced', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const res = await call('/auth/logout-all', { env: gatewayEnv({ USER_SESSIONS: failingFence() }), method: 'POST', headers: bearer(t.access_token) });
    expect(res.status).toBe(503);
    expect(await sessionEndedInObject(t)).toBe(false);
    expect(await kvHolds(t)).toBe(false);
    expect((await call('/auth/logout-all', { env: realEnv, method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    expect(await fenceHolds(t)).toBe(true);
  });
});

describe('admin disable writes the fence first', () => {
  it('a failing fence write: 503 and the account not disabled; the retry disables it and fences its sessions', async () => {
    const admin = await registerUser(undefined, undefined, realEnv);
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
    const target = await registerUser(undefined, undefined, realEnv);
    const disable = (e: TestEnv) => call(`/auth/admin/users/${target.user.id}/disable`, { env: e, method: 'POST', headers: bearer(admin.access_token) });
    const res = await disable(gatewayEnv({ USER_SESSIONS: failingFence() }));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    const disabledAt = () => env.DB.prepare('SELECT disabled_at FROM users WHERE id = ?').bind(target.user.id).first<number | null>('disabled_at');
    expect(await disabledAt()).toBeNull();
    expect(await sessionEndedInObject(target)).toBe(false);
    expect((await disable(realEnv)).status).toBe(200);
    expect(await disabledAt()).not.toBeNull();
    expect(await fenceHolds(target)).toBe(true);
  });
});

describe('the USER_SESSIONS binding is required', () => {
  it('without it, sign-in, refresh, sign-out and "immediate" routes answer 503 unavailable, never a pass', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const e = gatewayEnv({ USER_SESSIONS: undefined });
    const answers = [
      await call('/auth/login', { env: e, json: { email: t.user.email, password: GOOD_PASSWORD } }),
      await refresh(e, t),
      await call('/auth/logout', { env: e, method: 'POST', headers: bearer(t.access_token) }),
      await get(e, '/now/x', t.access_token),
    ];
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'unavailable' });
    }
    expect(await kvHolds(t)).toBe(false);
  });

  it('refuses an unknown revocation mode', () => {
    const parsed = parseConfig(makeEnv({ ROUTES: JSON.stringify([{ path: '/a', origin: 'service:ORIGIN', auth: 'required', revocation: 'soon' }]) }));
    expect(parsed).toMatchObject({ ok: false, error: { setting: 'ROUTES' } });
  });
});
