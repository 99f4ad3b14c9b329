/**
 * Every path that ends sessions must be idempotent and complete on retry. The
 * sessions are marked ended in D1 first and then revoked in KV (`sid:`); when that KV write
 * fails the client gets 503, and the retry must still write `sid:`, or the session's access
 * tokens keep passing the proxy and /auth/verify (which consult only KV) until they expire.
 * /auth/me re-reads D1, so these tests check /auth/verify and the proxy.
 *
 * POST /auth/logout is idempotent: a revoked or expired token,
 * or no session at all, answers 200 with the cookies cleared.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { baseEnv, bearer, call, foreignKey, GOOD_PASSWORD, makeEnv, PUBLIC_URL, registerUser, revokedKeys, setCookies, type TestEnv, testKey, type TokenResponse, uniqueEmail } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { signIn } from '../support/oauth-helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { sessionExec, sessionRow } from '../support/user-sessions-store';

const ROUTES = JSON.stringify([{ path: '/app', origin: 'service:ORIGIN', auth: 'required' }]);
const origin = recordingOrigin();
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };
const now = () => Math.floor(Date.now() / 1000);

/** The REVOKED namespace, except that the first `sid:` write fails as KV reports an outage. */
function sidWritesFailOnce(real: KVNamespace): KVNamespace & { failed: number } {
  let failed = 0;
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'failed') return failed;
      if (prop === 'put') {
        return async (key: string, ...rest: [string, KVNamespacePutOptions?]) => {
          if (key.startsWith('sid:') && failed === 0) {
            failed += 1;
            throw new Error('KV PUT failed: 500 Internal Server Error');
          }
          return target.put(key, ...rest);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as KVNamespace & { failed: number };
}

/** A gateway env whose KV fails the first `sid:` write (a fresh fault per call). */
function faultyEnv(settings: Record<string, unknown> = {}): TestEnv & { REVOKED: KVNamespace & { failed: number } } {
  return makeEnv({ ROUTES, ORIGIN: origin, REVOKED: sidWritesFailOnce(baseEnv.REVOKED), ...settings }) as TestEnv & { REVOKED: KVNamespace & { failed: number } };
}
const healthy = makeEnv({ ROUTES, ORIGIN: origin });

/** What forward-auth and the proxy say about an access token (only KV can refuse a verified one). */
async function gateStatus(accessToken: string): Promise<{ verify: number; proxy: number }> {
  const verify = await call('/auth/verify', { env: healthy, headers: { ...bearer(accessToken), 'x-original-uri': '/app/x' } });
  const proxy = await call('/app/x', { env: healthy, headers: { ...bearer(accessToken), accept: 'application/json' } });
  return { verify: verify.status, proxy: proxy.status };
}
const REFUSED = { verify: 401, proxy: 401 };
const PASSES = { verify: 200, proxy: 200 };

async function expect503(r: Response) {
  expect(r.status).toBe(503);
  expect(((await r.json()) as { error: string }).error).toBe('unavailable');
}

const sidOf = (token: string) => decodeJwt(token).sid as string;

async function secondSession(email: string): Promise<TokenResponse> {
  const r = await call('/auth/login', { json: { email, password: GOOD_PASSWORD } });
  expect(r.status).toBe(200);
  return r.json();
}

/** A user signed in twice: `a` in cookie mode (cookies) and token mode, `b` in token mode. */
async function twoSessions() {
  const email = uniqueEmail('end');
  const reg = await call('/auth/register', { json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
  expect(reg.status).toBe(201);
  const set = setCookies(reg);
  const cookies = { '__Host-gatehouse': set.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': set.get('__Secure-gatehouse-refresh')!.value };
  const a = cookies['__Host-gatehouse'];
  const b = await secondSession(email);
  expect(await gateStatus(b.access_token)).toEqual(PASSES);
  return { email, cookies, a, b };
}

describe('ending sessions when the KV write fails once: the retry completes it', () => {
  it('DELETE /auth/sessions/:id: 503, then the retry answers 200 (not 404) and the ended session\'s token is refused', async () => {
    const { a, b } = await twoSessions();
    const e = faultyEnv();
    await expect503(await call(`/auth/sessions/${sidOf(b.access_token)}`, { env: e, method: 'DELETE', headers: bearer(a) }));
    expect(e.REVOKED.failed).toBe(1);
    const retry = await call(`/auth/sessions/${sidOf(b.access_token)}`, { env: e, method: 'DELETE', headers: bearer(a) });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ ok: true });
    expect(await revokedKeys()).toContain(`sid:${sidOf(b.access_token)}`);
    expect(await gateStatus(b.access_token)).toEqual(REFUSED);
    expect(await gateStatus(a)).toEqual(PASSES);
  });

  it('DELETE /auth/sessions/:id of a session that ended longer ago than any of its tokens lives: still 404', async () => {
    const { a, b } = await twoSessions();
    await sessionExec('UPDATE sessions SET revoked_at = ? WHERE id = ?', [now() - 3600, sidOf(b.access_token)]);
    const r = await call(`/auth/sessions/${sidOf(b.access_token)}`, { method: 'DELETE', headers: bearer(a) });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: string }).error).toBe('not_found');
  });

  it('the account page\'s "end session": 503, then the retry ends it (303 back to the page) and its token is refused', async () => {
    const { cookies, b } = await twoSessions();
    const e = faultyEnv();
    const path = `/auth/account/sessions/${sidOf(b.access_token)}/end`;
    await expect503(await call(path, { env: e, method: 'POST', cookies, headers: SAME_ORIGIN }));
    const retry = await call(path, { env: e, method: 'POST', cookies, headers: SAME_ORIGIN });
    expect(retry.status).toBe(303);
    expect(retry.headers.get('location')).toBe('/auth/account?done=session_ended');
    expect(await gateStatus(b.access_token)).toEqual(REFUSED);
  });

  it('POST /auth/logout-all: 503, then the retry (same token) answers 200 and every token of the user is refused', async () => {
    const { email, a, b } = await twoSessions();
    const c = await secondSession(email);
    const e = faultyEnv();
    await expect503(await call('/auth/logout-all', { env: e, method: 'POST', headers: bearer(c.access_token) }));
    const retry = await call('/auth/logout-all', { env: e, method: 'POST', headers: bearer(c.access_token) });
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as { ok: boolean }).ok).toBe(true);
    expect(await gateStatus(a)).toEqual(REFUSED);
    expect(await gateStatus(b.access_token)).toEqual(REFUSED);
    expect(await gateStatus(c.access_token)).toEqual(REFUSED);
  });

  it('the account page\'s "sign out everywhere": 503, then the retry signs out everywhere and every token is refused', async () => {
    const { cookies, a, b } = await twoSessions();
    const e = faultyEnv();
    await expect503(await call('/auth/account/logout-all', { env: e, method: 'POST', cookies, headers: SAME_ORIGIN }));
    const retry = await call('/auth/account/logout-all', { env: e, method: 'POST', cookies, headers: SAME_ORIGIN });
    expect(retry.status).toBe(303);
    expect(retry.headers.get('location')).toBe('/auth/login?done=signed_out_everywhere');
    expect(await gateStatus(a)).toEqual(REFUSED);
    expect(await gateStatus(b.access_token)).toEqual(REFUSED);
  });

  it('POST /auth/logout: 503, then the retry with the same (now revoked) token answers 200, and older tokens of the session are refused', async () => {
    const t = await registerUser();
    const older = t.access_token;
    const refreshed = await call('/auth/refresh', { json: { refresh_token: t.refresh_token } });
    const current = ((await refreshed.json()) as TokenResponse).access_token;
    const e = faultyEnv();
    await expect503(await call('/auth/logout', { env: e, method: 'POST', headers: bearer(current) }));
    const retry = await call('/auth/logout', { env: e, method: 'POST', headers: bearer(current) });
    expect(retry.status).toBe(200);
    // The user's object is written first: the failed attempt ended the session there (so the
    // retry has nothing left to end) and the retry's KV write refuses every token of it.
    expect(await retry.json()).toEqual({ ok: true, ended_sessions: 0 });
    // `older` was never presented: only the session's sid: key can refuse it.
    expect(await gateStatus(older)).toEqual(REFUSED);
  });
});

describe('the account-claim path (a verified provider sign-in claims an unverified password account)', () => {
  let idp: FakeOidcProvider;
  beforeAll(async () => {
    installFakeNetwork();
    idp = await FakeOidcProvider.create();
  });

  it('503 when the KV write fails; the retried sign-in ends the squatter\'s sessions in full', async () => {
    const oidc = { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret };
    const email = uniqueEmail('claim');
    const squatter = await registerUser(email);
    expect(await gateStatus(squatter.access_token)).toEqual(PASSES);
    idp.user = { sub: `claim-${Date.now()}`, email, email_verified: true };
    const e = faultyEnv(oidc);
    const first = await signIn('oidc', idp, e);
    expect(first.status).toBe(503);
    expect(e.REVOKED.failed).toBe(1);
    const retry = await signIn('oidc', idp, e);
    expect(retry.status).toBe(303);
    expect(await gateStatus(squatter.access_token)).toEqual(REFUSED);
    expect((await call('/auth/refresh', { json: { refresh_token: squatter.refresh_token } })).status).toBe(401);
  });
});

describe('POST /auth/logout is idempotent', () => {
  it('a second sign-out with the same, now revoked, token: 200 with the cookies cleared', async () => {
    const t = await registerUser();
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(t.access_token) })).status).toBe(200);
    const again = await call('/auth/logout', { method: 'POST', headers: bearer(t.access_token) });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ ok: true, ended_sessions: 0 });
    expect(setCookies(again).get('__Host-gatehouse')!.attributes).toMatch(/Max-Age=0/i);
    expect(setCookies(again).get('__Secure-gatehouse-refresh')!.attributes).toMatch(/Max-Age=0/i);
  });

  it('a revoked token whose session D1 still shows live (a sign-out that failed after its first sid: write) finishes the sign-out', async () => {
    const t = await registerUser();
    const { sid } = decodeJwt(t.access_token) as { sid: string };
    await env.REVOKED.put(`sid:${sid}`, '1', { expirationTtl: 700 });
    const r = await call('/auth/logout', { method: 'POST', headers: bearer(t.access_token) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 1 });
    const row = await sessionRow<{ revoked_at: number | null }>('SELECT revoked_at FROM sessions WHERE id = ?', [sid]);
    expect(row?.revoked_at).not.toBeNull();
    expect(await revokedKeys()).toContain(`sid:${sid}`);
    expect((await call('/auth/refresh', { json: { refresh_token: t.refresh_token } })).status).toBe(401);
  });

  it('an expired token of ours: 200 with the cookies cleared, ending nothing (an old token proves no current session)', async () => {
    const t = await registerUser();
    const claims = decodeJwt(t.access_token) as { sub: string; sid: string; email: string };
    const ring = await keyringFromJwks({ keys: [testKey] });
    const expired = await issueAccessToken(
      { keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
      { userId: claims.sub, sessionId: claims.sid, email: claims.email, emailVerified: false, roles: [], amr: ['pwd'], authTime: 0, ttlSeconds: 600 },
      now() - 3600,
    );
    const r = await call('/auth/logout', { method: 'POST', headers: bearer(expired.token) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 0 });
    expect(setCookies(r).get('__Host-gatehouse')!.attributes).toMatch(/Max-Age=0/i);
    expect((await call('/auth/me', { headers: bearer(t.access_token) })).status).toBe(200);
  });

  it('a bearer token that is not ours is still refused with 401 invalid_token', async () => {
    const foreign = await foreignKey();
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ sid: 'ses_x', email: 'x@example.com', email_verified: true, roles: [] })
      .setProtectedHeader({ alg: 'ES256', kid: testKey.kid, typ: 'at+jwt' })
      .setIssuer(PUBLIC_URL)
      .setAudience(PUBLIC_URL)
      .setSubject('usr_x')
      .setJti('j')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(foreign.privateKey);
    const r = await call('/auth/logout', { method: 'POST', headers: bearer(token) });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: string }).error).toBe('invalid_token');
  });
});
