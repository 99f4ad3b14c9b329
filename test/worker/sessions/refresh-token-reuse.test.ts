/**
 * Two tabs refreshing with the same refresh cookie at once must not sign the
 * user out. A token rotated less than REFRESH_REUSE_GRACE_S ago, presented again, ends nothing
 * and raises no alert; after the grace it is theft as before (the session ends, an alert fires).
 * Time is moved by rewriting `rotated_at` in D1, never by waiting.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { REFRESH_REUSE_GRACE_S } from '../../../src/auth/sessions';
import { bearer, call, countRows, defaultEnv, GOOD_PASSWORD, revokedKeys, setCookies, type TokenResponse, uniqueEmail } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';
import { sessionExec } from '../support/user-sessions-store';

const NAVIGATE = { accept: 'text/html', 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const RETURN_TO = '/app/page?x=1';
const navigation = `/auth/refresh?return_to=${encodeURIComponent(RETURN_TO)}`;
const claimsOf = (jwt: string) => JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sid: string; sub: string };
const sidOf = (jwt: string) => claimsOf(jwt).sid;

const refreshJson = (refresh_token: string) => call('/auth/refresh', { json: { refresh_token } });

async function tokenSession(): Promise<TokenResponse> {
  const r = await call('/auth/register', { json: { email: uniqueEmail('grace'), password: GOOD_PASSWORD } });
  expect(r.status).toBe(201);
  return r.json();
}

/** Moves every rotation of a session `seconds` into the past. */
async function ageRotations(sessionId: string, seconds: number) {
  await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - ? WHERE session_id = ?', [seconds, sessionId]);
}

async function sessionState(sessionId: string, userId: string) {
  return {
    revoked: await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', sessionId),
    alerts: await countRows('auth_events', "event = 'refresh_token_reuse' AND user_id = ?", userId),
    sidRevoked: (await revokedKeys()).includes(`sid:${sessionId}`),
  };
}

describe('a just-rotated refresh token presented again (within the grace)', () => {
  it('the grace is a few seconds', () => {
    expect(REFRESH_REUSE_GRACE_S).toBeGreaterThanOrEqual(5);
    expect(REFRESH_REUSE_GRACE_S).toBeLessThanOrEqual(30);
  });

  it('POST /auth/refresh: 409 conflict, nothing ends, no alert, and the new tokens keep working', async () => {
    const t = await tokenSession();
    const sid = sidOf(t.access_token);
    const first = await refreshJson(t.refresh_token);
    expect(first.status).toBe(200);
    const next = (await first.json()) as TokenResponse;

    const again = await refreshJson(t.refresh_token);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: 'conflict', error_description: expect.stringContaining('just used by another request') });
    expect(await sessionState(sid, t.user.id)).toEqual({ revoked: 0, alerts: 0, sidRevoked: false });
    // The winner's tokens are untouched: the access token works and the refresh token rotates.
    expect((await call('/auth/me', { headers: bearer(next.access_token) })).status).toBe(200);
    expect((await refreshJson(next.refresh_token)).status).toBe(200);
  });

  it('POST /auth/refresh in cookie mode: 409 without clearing the cookies', async () => {
    const { cookies } = await cookieSession(defaultEnv);
    const headers = { 'sec-fetch-site': 'same-origin' };
    const first = await call('/auth/refresh', { method: 'POST', cookies, headers });
    expect(first.status).toBe(200);
    const again = await call('/auth/refresh', { method: 'POST', cookies, headers });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: string }).error).toBe('conflict');
    expect(again.headers.getSetCookie()).toEqual([]);
  });

  it('GET /auth/refresh (two tabs, one after the other): the late one just goes back to return_to, cookies untouched', async () => {
    const { cookies } = await cookieSession(defaultEnv);
    const sid = sidOf(cookies['__Host-gatehouse']);
    const userId = claimsOf(cookies['__Host-gatehouse']).sub;
    const winner = await call(navigation, { cookies, headers: NAVIGATE });
    expect(winner.status).toBe(303);
    expect(winner.headers.get('location')).toBe(RETURN_TO);
    const fresh = setCookies(winner);

    const late = await call(navigation, { cookies, headers: NAVIGATE });
    expect(late.status).toBe(303);
    expect(late.headers.get('location')).toBe(RETURN_TO);
    expect(late.headers.getSetCookie()).toEqual([]);
    expect(await sessionState(sid, userId)).toEqual({ revoked: 0, alerts: 0, sidRevoked: false });

    // The browser holds the winner's cookies: they work.
    const jar = { '__Host-gatehouse': fresh.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': fresh.get('__Secure-gatehouse-refresh')!.value };
    expect((await call('/auth/me', { cookies: jar })).status).toBe(200);
    const onward = await call(navigation, { cookies: jar, headers: NAVIGATE });
    expect(onward.status).toBe(303);
    expect(setCookies(onward).get('__Secure-gatehouse-refresh')!.value).not.toBe('');
  });

  it('GET /auth/refresh (two tabs at the same moment): both go back to return_to, one sets cookies, nothing ends', async () => {
    const { cookies } = await cookieSession(defaultEnv);
    const sid = sidOf(cookies['__Host-gatehouse']);
    const userId = claimsOf(cookies['__Host-gatehouse']).sub;
    const both = await Promise.all([call(navigation, { cookies, headers: NAVIGATE }), call(navigation, { cookies, headers: NAVIGATE })]);
    expect(both.map((r) => r.status)).toEqual([303, 303]);
    expect(both.map((r) => r.headers.get('location'))).toEqual([RETURN_TO, RETURN_TO]);
    const setting = both.filter((r) => r.headers.getSetCookie().length > 0);
    expect(setting).toHaveLength(1);
    expect(setCookies(setting[0]!).get('__Host-gatehouse')!.value).not.toBe('');
    expect(await sessionState(sid, userId)).toEqual({ revoked: 0, alerts: 0, sidRevoked: false });
  });
});

describe('a rotated refresh token presented again after the grace: still theft', () => {
  it('POST /auth/refresh: 401, the whole session ends (D1 and KV) and refresh_token_reuse is raised', async () => {
    const t = await tokenSession();
    const sid = sidOf(t.access_token);
    const next = (await (await refreshJson(t.refresh_token)).json()) as TokenResponse;
    await ageRotations(sid, REFRESH_REUSE_GRACE_S + 1);

    const replay = await refreshJson(t.refresh_token);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_token');
    expect(await sessionState(sid, t.user.id)).toEqual({ revoked: 1, alerts: 1, sidRevoked: true });
    expect((await refreshJson(next.refresh_token)).status).toBe(401);
  });

  it('GET /auth/refresh: cookies cleared, off to sign-in, session ended, alert raised', async () => {
    const { cookies } = await cookieSession(defaultEnv);
    const sid = sidOf(cookies['__Host-gatehouse']);
    const userId = claimsOf(cookies['__Host-gatehouse']).sub;
    expect((await call(navigation, { cookies, headers: NAVIGATE })).status).toBe(303);
    await ageRotations(sid, REFRESH_REUSE_GRACE_S + 1);

    const reuse = await call(navigation, { cookies, headers: NAVIGATE });
    expect(reuse.status).toBe(303);
    expect(reuse.headers.get('location')).toBe(`/auth/login?return_to=${encodeURIComponent(RETURN_TO)}`);
    expect(setCookies(reuse).get('__Secure-gatehouse-refresh')!.attributes).toMatch(/Max-Age=0/i);
    expect(await sessionState(sid, userId)).toEqual({ revoked: 1, alerts: 1, sidRevoked: true });
  });

  it('within the grace but after the session ended: refused as before (no conflict for a dead session)', async () => {
    const t = await tokenSession();
    const next = (await (await refreshJson(t.refresh_token)).json()) as TokenResponse;
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(next.access_token) })).status).toBe(200);
    const r = await refreshJson(t.refresh_token);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: string }).error).toBe('invalid_token');
  });
});
