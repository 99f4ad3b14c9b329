/**
 * Immediate revocation where a route needs it: the optional revocation fence, one
 * Durable Object per user (the real one, in workerd). A route marked `revocation = "immediate"`
 * asks it on every request, so a revocation written anywhere is refused on the next request,
 * whatever this isolate's cache and KV still say; a "cached" route keeps its window. Refresh
 * asks it before rotating. Every revocation writes it first; a fence fault is a 503, never a pass.
 * "Another isolate" is simulated by writing the revocation to the fence only (through its binding).
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { bearer, call, makeEnv, registerUser, type TestEnv, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

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

/** A fence binding whose object throws on every call (unreachable, overloaded, broken). */
function failingFence(calls: string[] = []) {
  const fail = async (name: string) => {
    calls.push(name);
    throw new Error('Durable Object is overloaded');
  };
  return {
    idFromName: (name: string) => env.REVOCATION_FENCE.idFromName(name),
    get: () => ({ isRevoked: () => fail('isRevoked'), revoke: () => fail('revoke') }),
  };
}

const gatewayEnv = (overrides: Record<string, unknown> = {}): TestEnv => makeEnv({ ROUTES, ORIGIN: origin, ...overrides });
const realEnv = gatewayEnv();

const get = (e: TestEnv, path: string, token: string) => call(path, { env: e, headers: { ...bearer(token), accept: 'application/json' } });
const verify = (e: TestEnv, uri: string, token: string) => call('/auth/verify', { env: e, headers: { ...bearer(token), 'x-original-uri': uri } });
const refresh = (e: TestEnv, t: TokenResponse) => call('/auth/refresh', { env: e, json: { refresh_token: t.refresh_token } });

/** Another isolate's revocation: written to the user's fence only, nothing in KV or this isolate. */
async function fenceElsewhere(t: TokenResponse) {
  const { sub, sid } = claimsOf(t);
  await env.REVOCATION_FENCE.get(env.REVOCATION_FENCE.idFromName(sub)).revoke([sid], Date.now() + 600_000);
}
async function fenceHolds(t: TokenResponse): Promise<boolean> {
  const { sub, sid } = claimsOf(t);
  return env.REVOCATION_FENCE.get(env.REVOCATION_FENCE.idFromName(sub)).isRevoked(sid);
}
const kvHolds = async (t: TokenResponse) => (await env.REVOKED.get(`sid:${claimsOf(t).sid}`)) !== null;
const sessionRevokedInD1 = async (t: TokenResponse) =>
  (await env.DB.prepare('SELECT revoked_at FROM sessions WHERE id = ?').bind(claimsOf(t).sid).first<{ revoked_at: number | null }>())?.revoked_at !== null;

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
    const broken = gatewayEnv({ REVOCATION_FENCE: failingFence() });
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
    const res = await refresh(gatewayEnv({ REVOCATION_FENCE: failingFence() }), t);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect((await refresh(realEnv, t)).status).toBe(200);
  });
});

describe('revocations write the fence first', () => {
  it('sign-out with a failing fence write: 503 and nothing else done; the retry completes it', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const calls: string[] = [];
    const res = await call('/auth/logout', { env: gatewayEnv({ REVOCATION_FENCE: failingFence(calls) }), method: 'POST', headers: bearer(t.access_token) });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect(calls).toEqual(['revoke']);
    expect(await kvHolds(t)).toBe(false);
    expect(await sessionRevokedInD1(t)).toBe(false);
    expect((await get(realEnv, '/app/x', t.access_token)).status).toBe(200);
    // The retry, with the fence back.
    expect((await call('/auth/logout', { env: realEnv, method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    expect(await fenceHolds(t)).toBe(true);
    expect(await kvHolds(t)).toBe(true);
    expect(await sessionRevokedInD1(t)).toBe(true);
  });

  it('logout-all with a failing fence write: 503 and no session ended; with the fence, every session is fenced', async () => {
    const t = await registerUser(undefined, undefined, realEnv);
    const res = await call('/auth/logout-all', { env: gatewayEnv({ REVOCATION_FENCE: failingFence() }), method: 'POST', headers: bearer(t.access_token) });
    expect(res.status).toBe(503);
    expect(await sessionRevokedInD1(t)).toBe(false);
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
    const res = await disable(gatewayEnv({ REVOCATION_FENCE: failingFence() }));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    const disabledAt = () => env.DB.prepare('SELECT disabled_at FROM users WHERE id = ?').bind(target.user.id).first<number | null>('disabled_at');
    expect(await disabledAt()).toBeNull();
    expect(await sessionRevokedInD1(target)).toBe(false);
    expect((await disable(realEnv)).status).toBe(200);
    expect(await disabledAt()).not.toBeNull();
    expect(await fenceHolds(target)).toBe(true);
  });
});

describe('configuration', () => {
  it('refuses revocation = "immediate" without the REVOCATION_FENCE binding (configuration_error naming ROUTES)', async () => {
    const e = gatewayEnv({ REVOCATION_FENCE: undefined });
    const parsed = parseConfig(e);
    expect(parsed.ok).toBe(false);
    const res = await call('/auth/me', { env: e });
    expect(res.status).toBe(500);
    const body = await res.json<{ error: string; error_description: string }>();
    expect(body.error).toBe('configuration_error');
    expect(body.error_description).toContain('ROUTES');
    expect(body.error_description).toContain('REVOCATION_FENCE');
  });

  it('refuses an unknown revocation mode', () => {
    const parsed = parseConfig(makeEnv({ ROUTES: JSON.stringify([{ path: '/a', origin: 'service:ORIGIN', auth: 'required', revocation: 'soon' }]) }));
    expect(parsed).toMatchObject({ ok: false, error: { setting: 'ROUTES' } });
  });

  it('without the binding, "cached" routes and sign-out work as before', async () => {
    const e = makeEnv({ ROUTES: JSON.stringify([{ path: '/app', origin: 'service:ORIGIN', auth: 'required' }]), ORIGIN: origin, REVOCATION_FENCE: undefined });
    expect(parseConfig(e).ok).toBe(true);
    const t = await registerUser(undefined, undefined, e);
    expect((await get(e, '/app/x', t.access_token)).status).toBe(200);
    expect((await call('/auth/logout', { env: e, method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    expect(await fenceHolds(t)).toBe(false);
    expect(await kvHolds(t)).toBe(true);
    expect((await get(e, '/app/x', t.access_token)).status).toBe(401);
  });
});
