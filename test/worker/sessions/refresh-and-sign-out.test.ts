import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { baseEnv, bearer, call, countRows, defaultEnv, GOOD_PASSWORD, makeEnv, PUBLIC_URL, registerUser, revokedKeys, seedUser, setCookies, stateSnapshot, testKey, type TokenResponse, uniqueEmail } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';
import { sessionExec, sessionRow } from '../support/user-sessions-store';

const refresh = (refresh_token: string, e?: ReturnType<typeof makeEnv>) => call('/auth/refresh', { json: { refresh_token }, env: e });
const now = () => Math.floor(Date.now() / 1000);
const sid = (t: TokenResponse) => decodeJwt<{ sid: string }>(t.access_token).sid;
/**
 * Forward-auth for the token. /auth/verify checks the token and the KV revocation list only
 * (no session read, it is the hot path), so a refusal there is the revocation list's alone;
 * /auth/me would also refuse from the session in the user's object.
 */
const verify = (t: TokenResponse) => call('/auth/verify', { headers: bearer(t.access_token) });
const REVOKED = { error: 'invalid_token', error_description: 'The access token has been revoked.' };
/** verifyAccessToken's clock tolerance: a token is accepted until `exp` + this. */
const CLOCK_TOLERANCE_S = 30;

/** The KV expiry (Unix seconds) of one REVOKED key. */
async function kvExpiration(name: string): Promise<number | undefined> {
  const { keys } = await baseEnv.REVOKED.list({ prefix: name });
  return keys.find((k) => k.name === name)?.expiration;
}

describe('POST /auth/refresh', () => {
  it('rotates the refresh token and issues a new access token for the same session', async () => {
    const t = await registerUser();
    const r = await refresh(t.refresh_token);
    expect(r.status).toBe(200);
    const next = (await r.json()) as TokenResponse;
    expect(next.refresh_token).not.toBe(t.refresh_token);
    expect(next.access_token).not.toBe(t.access_token);
    expect(sid(next)).toBe(sid(t));
    expect((await call('/auth/me', { headers: bearer(next.access_token) })).status).toBe(200);
    expect(await countRows('rotated_refresh_tokens', 'session_id = ?', sid(t))).toBe(1);
    expect(await countRows('auth_events', "event = 'refresh' AND user_id = ?", t.user.id)).toBe(1);
  });

  it('of ten parallel refreshes with one token exactly one succeeds', async () => {
    const t = await registerUser();
    const results = await Promise.all(Array.from({ length: 10 }, () => refresh(t.refresh_token)));
    const statuses = results.map((r) => r.status).sort();
    // The losers get 409 conflict (a just-rotated token, see refresh-token-reuse.test.ts).
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    const winner = (await results.find((r) => r.status === 200)!.json()) as TokenResponse;
    // The race losers did not end the session: the winner's new token still works.
    const again = await refresh(winner.refresh_token);
    expect(again.status).toBe(200);
  });

  it('treats a rotated token presented again as theft: the whole session ends', async () => {
    const t = await registerUser();
    const next = (await (await refresh(t.refresh_token)).json()) as TokenResponse;
    // Past the grace for two tabs refreshing at once (REFRESH_REUSE_GRACE_S).
    await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 60 WHERE session_id = ?', [sid(t)]);
    const replay = await refresh(t.refresh_token);
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_token' });
    // The thief's replay ended the session for everyone: the legitimate new tokens die too.
    expect((await refresh(next.refresh_token)).status).toBe(401);
    expect((await call('/auth/me', { headers: bearer(next.access_token) })).status).toBe(401);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', sid(t))).toBe(1);
    expect(await revokedKeys()).toContain(`sid:${sid(t)}`);
    const event = await env.DB.prepare("SELECT outcome, user_id FROM auth_events WHERE event = 'refresh_token_reuse' AND user_id = ?").bind(t.user.id).first();
    expect(event).toEqual({ outcome: 'security', user_id: t.user.id });
  });

  it('refuses unknown, malformed and missing refresh tokens without changing anything', async () => {
    await seedUser();
    const before = await stateSnapshot();
    // An unknown or malformed token is looked up and not found; an empty one is no token at all.
    const cases: [string, string][] = [
      ['x'.repeat(43), 'The refresh token is invalid, expired or revoked.'],
      ['short', 'The refresh token is invalid, expired or revoked.'],
      ['a'.repeat(500), 'The refresh token is invalid, expired or revoked.'],
      ['', 'No refresh token was sent.'],
    ];
    for (const [token, description] of cases) {
      const r = await refresh(token);
      expect(r.status, `refresh_token ${JSON.stringify(token.slice(0, 8))}`).toBe(401);
      expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(await r.json()).toEqual({ error: 'invalid_token', error_description: description });
    }
    const none = await call('/auth/refresh', { method: 'POST' });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: 'invalid_token', error_description: 'No refresh token was sent.' });
    const notString = await call('/auth/refresh', { json: { refresh_token: 42 } });
    expect(notString.status).toBe(400);
    expect(await notString.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('"refresh_token"') });
    const extra = await call('/auth/refresh', { json: { refresh_token: 'x', extra: 1 } });
    expect(extra.status).toBe(400);
    expect(await extra.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('"extra"') });
    expect(await stateSnapshot()).toEqual(before);
  });

  it('enforces the idle limit (REFRESH_TOKEN_TTL) and the absolute limit (SESSION_MAX_AGE)', async () => {
    const idle = await registerUser();
    await sessionExec('UPDATE sessions SET expires_at = ? WHERE id = ?', [now() - 1, sid(idle)]);
    expect((await refresh(idle.refresh_token)).status).toBe(401);

    const old = await registerUser();
    await sessionExec('UPDATE sessions SET created_at = ? WHERE id = ?', [now() - 7_776_000 - 10, sid(old)]);
    expect((await refresh(old.refresh_token)).status).toBe(401);

    // A refresh never extends past the absolute limit.
    const capped = await registerUser();
    const created = now() - 7_776_000 + 100;
    await sessionExec('UPDATE sessions SET created_at = ? WHERE id = ?', [created, sid(capped)]);
    expect((await refresh(capped.refresh_token)).status).toBe(200);
    const row = await sessionRow<{ expires_at: number }>('SELECT expires_at FROM sessions WHERE id = ?', [sid(capped)]);
    expect(row!.expires_at).toBe(created + 7_776_000);
  });

  it('refuses a disabled user and ends the session', async () => {
    const t = await registerUser();
    await env.DB.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').bind(now(), t.user.id).run();
    expect((await refresh(t.refresh_token)).status).toBe(401);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', sid(t))).toBe(1);
  });

  it('cookie mode: rotates the cookies, and is refused cross-site', async () => {
    const reg = await call('/auth/register', { json: { email: uniqueEmail(), password: GOOD_PASSWORD, session: 'cookie' } });
    const cookies = setCookies(reg);
    const jar = { '__Host-gatehouse': cookies.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': cookies.get('__Secure-gatehouse-refresh')!.value };
    const before = await stateSnapshot();
    const cross = await call('/auth/refresh', { method: 'POST', cookies: jar, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(cross.status).toBe(403);
    const crossOrigin = await call('/auth/refresh', { method: 'POST', cookies: jar, headers: { origin: 'https://evil.example' } });
    expect(crossOrigin.status).toBe(403);
    expect(await stateSnapshot()).toEqual(before);
    const ok = await call('/auth/refresh', { method: 'POST', cookies: jar, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).not.toMatch(/refresh_token|access_token/);
    const rotated = setCookies(ok);
    expect(rotated.get('__Secure-gatehouse-refresh')!.value).not.toBe(jar['__Secure-gatehouse-refresh']);
  });
});

describe('POST /auth/logout', () => {
  it('revokes the session sid in KV with an expiry (no per-token jti key), ends the refresh token, clears cookies', async () => {
    const t = await registerUser();
    const payload = decodeJwt<{ jti: string; sid: string; exp: number }>(t.access_token);
    expect((await verify(t)).status).toBe(200);
    const r = await call('/auth/logout', { method: 'POST', headers: bearer(t.access_token) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 1 });
    const cleared = setCookies(r);
    expect(cleared.get('__Host-gatehouse')!.attributes).toMatch(/Max-Age=0/);
    expect(cleared.get('__Secure-gatehouse-refresh')!.attributes).toMatch(/Max-Age=0/);
    const list = await env.REVOKED.list();
    const jti = list.keys.find((k) => k.name === `jti:${payload.jti}`);
    const sidKey = list.keys.find((k) => k.name === `sid:${payload.sid}`);
    expect(jti).toBeUndefined();
    expect(sidKey).toBeDefined();
    // Expiry = the longest access-token lifetime plus the 30 s clock tolerance: it outlives this token and any other of the session.
    expect(sidKey!.expiration).toBeGreaterThanOrEqual(payload.exp + 30 - 2);
    expect(sidKey!.expiration).toBeGreaterThanOrEqual(now() + 599);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', payload.sid)).toBe(1);
    // Refused on the very next request, by the KV revocation list itself (see `verify`).
    const next = await verify(t);
    expect(next.status).toBe(401);
    expect(await next.json()).toEqual(REVOKED);
    expect((await call('/auth/me', { headers: bearer(t.access_token) })).status).toBe(401);
    expect((await refresh(t.refresh_token)).status).toBe(401);
    expect(await countRows('auth_events', "event = 'logout' AND user_id = ?", t.user.id)).toBe(1);
  });

  it('signs out with only the refresh cookie when the access token has expired', async () => {
    const t = await registerUser();
    const r = await call('/auth/logout', { method: 'POST', cookies: { '__Secure-gatehouse-refresh': t.refresh_token }, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(r.status).toBe(200);
    expect((await refresh(t.refresh_token)).status).toBe(401);
    expect((await call('/auth/me', { headers: bearer(t.access_token) })).status).toBe(401);
  });

  it('answers 200 with nothing ended when there is nothing to sign out of, changing nothing (sign-out is idempotent)', async () => {
    const before = await stateSnapshot();
    const r = await call('/auth/logout', { method: 'POST' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 0 });
    expect(await stateSnapshot()).toEqual(before);
  });

  it('refuses a cookie-authenticated cross-site logout for every content type', async () => {
    const t = await registerUser();
    const before = await stateSnapshot();
    const variants: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' },
      { 'sec-fetch-site': 'same-site', 'content-type': 'text/plain' },
      { origin: 'https://evil.example', 'content-type': 'application/json' },
      { origin: 'null' },
    ];
    for (const headers of variants) {
      const r = await call('/auth/logout', { method: 'POST', headers, body: headers['content-type'] ? '{}' : undefined, cookies: { '__Host-gatehouse': t.access_token } });
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(await stateSnapshot()).toEqual(before);
    // Bearer clients are not cookie-authenticated: no Origin check for them.
    const ok = await call('/auth/logout', { method: 'POST', headers: { ...bearer(t.access_token), origin: 'https://api-client.example' } });
    expect(ok.status).toBe(200);
  });
});

describe('POST /auth/logout-all and the session list', () => {
  it('lists own sessions, ends one by id, and ends all', async () => {
    const email = uniqueEmail();
    const a = await registerUser(email);
    const b = (await (await call('/auth/login', { json: { email, password: GOOD_PASSWORD } })).json()) as TokenResponse;
    const c = (await (await call('/auth/login', { json: { email, password: GOOD_PASSWORD } })).json()) as TokenResponse;
    const list = await call('/auth/sessions', { headers: bearer(a.access_token) });
    expect(list.status).toBe(200);
    const sessions = ((await list.json()) as { sessions: { id: string; current: boolean; ip: string }[] }).sessions;
    expect(sessions.map((s) => s.id).sort()).toEqual([sid(a), sid(b), sid(c)].sort());
    expect(sessions.find((s) => s.current)!.id).toBe(sid(a));
    expect(sessions[0]!.ip).toBe('203.0.113.7');
    expect(JSON.stringify(sessions)).not.toMatch(/refresh/);

    expect((await verify(b)).status).toBe(200);
    const del = await call(`/auth/sessions/${sid(b)}`, { method: 'DELETE', headers: bearer(a.access_token) });
    expect(del.status).toBe(200);
    // Only b's session id is in KV (its token id is not): the sid entry refuses it.
    const afterDelete = await verify(b);
    expect(afterDelete.status).toBe(401);
    expect(await afterDelete.json()).toEqual(REVOKED);
    expect((await call('/auth/me', { headers: bearer(b.access_token) })).status).toBe(401);
    expect((await call('/auth/me', { headers: bearer(a.access_token) })).status).toBe(200);

    const all = await call('/auth/logout-all', { method: 'POST', headers: bearer(c.access_token) });
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({ ok: true, ended_sessions: 2 });
    for (const t of [a, c]) {
      expect(await (await verify(t)).json()).toEqual(REVOKED);
      expect((await call('/auth/me', { headers: bearer(t.access_token) })).status).toBe(401);
      expect((await refresh(t.refresh_token)).status).toBe(401);
    }
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', a.user.id)).toBe(0);
  });

  it("cannot end another user's session (404, nothing changes)", async () => {
    const mine = await registerUser();
    const theirs = await registerUser();
    const before = await stateSnapshot();
    const r = await call(`/auth/sessions/${sid(theirs)}`, { method: 'DELETE', headers: bearer(mine.access_token) });
    expect(r.status).toBe(404);
    expect(await stateSnapshot()).toEqual(before);
    expect((await call('/auth/me', { headers: bearer(theirs.access_token) })).status).toBe(200);
  });
});

describe('GET /auth/me', () => {
  it('returns the user and the session, never secrets', async () => {
    const t = await registerUser();
    const r = await call('/auth/me', { headers: bearer(t.access_token) });
    const body = (await r.json()) as { user: Record<string, unknown>; session: Record<string, unknown> };
    expect(body.user).toMatchObject({ id: t.user.id, email: t.user.email, email_verified: false, roles: [] });
    expect(body.session).toMatchObject({ id: sid(t), current: true });
    expect(JSON.stringify(body)).not.toMatch(/password_hash|refresh|scrypt/);
    expect(body.session.provider).toBe('password');
  });

  it('refuses a disabled user even with an unexpired token', async () => {
    const t = await registerUser();
    await env.DB.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').bind(now(), t.user.id).run();
    expect((await call('/auth/me', { headers: bearer(t.access_token) })).status).toBe(401);
  });
});

describe('revocation outlives every token it revokes (verification accepts exp + clock tolerance)', () => {
  it('logout: the sid key stays in KV until every token of the session is refused by its exp anyway (no per-token jti key)', async () => {
    const t = await registerUser();
    const claims = decodeJwt(t.access_token) as { jti: string; sid: string; exp: number };
    const before = now();
    const r = await call('/auth/logout', { method: 'POST', headers: bearer(t.access_token) });
    expect(r.status).toBe(200);
    expect(await kvExpiration(`jti:${claims.jti}`)).toBeUndefined();
    // Any token of the session was issued before now, so it expires by now + ACCESS_TOKEN_TTL (600).
    expect(await kvExpiration(`sid:${claims.sid}`)).toBeGreaterThanOrEqual(before + 600 + CLOCK_TOLERANCE_S);
  });
});

describe('sign-out from a browser whose access cookie has expired', () => {
  it('a stale access cookie next to a live refresh cookie still signs out (session ended, cookies cleared)', async () => {
    const { cookies } = await cookieSession(defaultEnv);
    const claims = decodeJwt(cookies['__Host-gatehouse']) as { sub: string; sid: string; email: string };
    const ring = await keyringFromJwks({ keys: [testKey] });
    const stale = await issueAccessToken(
      { keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
      { userId: claims.sub, sessionId: claims.sid, email: claims.email, emailVerified: false, roles: [], amr: ['pwd'], authTime: 0, ttlSeconds: 600 },
      now() - 3600,
    );
    const r = await call('/auth/logout', {
      method: 'POST',
      headers: { 'sec-fetch-site': 'same-origin' },
      cookies: { '__Host-gatehouse': stale.token, '__Secure-gatehouse-refresh': cookies['__Secure-gatehouse-refresh'] },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ ok: true, ended_sessions: 1 });
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', claims.sid)).toBe(1);
    expect(setCookies(r).get('__Host-gatehouse')?.value).toBe('');
  });

  it('a bad bearer token is still refused', async () => {
    const r = await call('/auth/logout', { method: 'POST', headers: bearer('a.b.c') });
    expect(r.status).toBe(401);
  });
});
