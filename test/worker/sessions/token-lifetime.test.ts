/**
 * An access token never outlives its session: its `exp` is at most the session's absolute end
 * (`created_at + SESSION_MAX_AGE`), whether it comes from a sign-in, a refresh or a step-up,
 * and `expires_in` and the access cookie say the same. Signing out everywhere then also
 * revokes a session that ran out a moment ago, whose last token is still within clock
 * tolerance. `Date` is moved with fake timers, never by waiting.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLOCK_TOLERANCE_S } from '../../../src/util/time';
import { bearer, call, GOOD_PASSWORD, makeEnv, setCookies, type TokenResponse, uniqueEmail } from '../support/helpers';
import { sessionRow } from '../support/user-sessions-store';

const MAX_AGE = 300;
const e = makeEnv({ SESSION_MAX_AGE: String(MAX_AGE), ACCESS_TOKEN_TTL: '600' });
const now = () => Math.floor(Date.now() / 1000);

/** Moves `Date` (only) forward, from wherever it is now. */
function laterBy(seconds: number) {
  const target = Date.now() + seconds * 1000;
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(target);
}
afterEach(() => {
  vi.useRealTimers();
});

async function register(email = uniqueEmail('lifetime')): Promise<TokenResponse & { email: string; expires_in: number }> {
  const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD }, env: e });
  expect(r.status).toBe(201);
  return { email, ...((await r.json()) as TokenResponse & { expires_in: number }) };
}

async function signIn(email: string): Promise<TokenResponse & { expires_in: number }> {
  const r = await call('/auth/login', { json: { email, password: GOOD_PASSWORD }, env: e });
  expect(r.status).toBe(200);
  return r.json();
}

const refresh = (refresh_token: string) => call('/auth/refresh', { json: { refresh_token }, env: e });
const verify = (token: string) => call('/auth/verify', { env: e, headers: bearer(token) });
const absoluteEnd = async (sid: string) => {
  const row = await sessionRow<{ created_at: number }>('SELECT created_at FROM sessions WHERE id = ?', [sid]);
  return row!.created_at + MAX_AGE;
};

describe('an access token never outlives its session', () => {
  it('a refresh just before the absolute end: exp is the end, expires_in says so, and the token dies with the session', async () => {
    const user = await register();
    const end = await absoluteEnd(decodeJwt(user.access_token).sid as string);
    laterBy(MAX_AGE - 10);
    const r = await refresh(user.refresh_token);
    expect(r.status).toBe(200);
    const body = (await r.json()) as TokenResponse & { expires_in: number };
    const claims = decodeJwt(body.access_token);
    expect(claims.exp).toBe(end);
    expect(body.expires_in).toBe(claims.exp! - claims.iat!);
    expect(body.expires_in).toBeLessThanOrEqual(10);
    expect((await verify(body.access_token)).status).toBe(200);
    // Past the session's end (and the clock tolerance every token gets), the token is dead.
    laterBy(11 + CLOCK_TOLERANCE_S);
    expect((await verify(body.access_token)).status).toBe(401);
  });

  it('far from the end a token still gets its full ACCESS_TOKEN_TTL, capped only by the session', async () => {
    const user = await register();
    const claims = decodeJwt(user.access_token);
    // SESSION_MAX_AGE (300) is shorter than ACCESS_TOKEN_TTL (600): the session is the limit.
    expect(claims.exp).toBe(await absoluteEnd(claims.sid as string));
    expect(user.expires_in).toBe(claims.exp! - claims.iat!);
    const long = makeEnv({ ACCESS_TOKEN_TTL: '600' });
    const r = await call('/auth/register', { json: { email: uniqueEmail('long'), password: GOOD_PASSWORD }, env: long });
    const full = decodeJwt(((await r.json()) as TokenResponse).access_token);
    expect(full.exp! - full.iat!).toBe(600);
  });

  it('cookie mode: the access cookie’s Max-Age and expires_in match the capped exp', async () => {
    const reg = await call('/auth/register', { json: { email: uniqueEmail('lifetime-cookie'), password: GOOD_PASSWORD, session: 'cookie' }, env: e });
    const jar = Object.fromEntries([...setCookies(reg)].map(([name, { value }]) => [name, value]));
    const end = await absoluteEnd(decodeJwt(jar['__Host-gatehouse']!).sid as string);
    laterBy(MAX_AGE - 20);
    const r = await call('/auth/refresh', { method: 'POST', cookies: jar, headers: { 'sec-fetch-site': 'same-origin' }, env: e });
    expect(r.status).toBe(200);
    const { expires_in } = (await r.json()) as { expires_in: number };
    const access = setCookies(r).get('__Host-gatehouse')!;
    expect(decodeJwt(access.value).exp).toBe(end);
    expect(expires_in).toBe(end - now());
    expect(access.attributes).toContain(`Max-Age=${expires_in}`);
  });

  it('a step-up near the end: the new token is capped at the end too', async () => {
    const user = await register();
    const end = await absoluteEnd(decodeJwt(user.access_token).sid as string);
    laterBy(MAX_AGE - 30);
    const r = await call('/auth/step-up', { json: { password: GOOD_PASSWORD }, headers: bearer(user.access_token), env: e });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { access_token: string; expires_in: number };
    const claims = decodeJwt(body.access_token);
    expect(claims.exp).toBe(end);
    expect(body.expires_in).toBe(claims.exp! - claims.iat!);
  });
});

describe('signing out everywhere reaches a session at its absolute end', () => {
  it('a token refreshed just before the end, its session run out a moment ago: refused at /auth/verify after logout-all', async () => {
    const user = await register();
    laterBy(MAX_AGE - 5);
    const refreshed = await refresh(user.refresh_token);
    expect(refreshed.status).toBe(200);
    const { access_token: lastToken } = (await refreshed.json()) as TokenResponse;
    // The session is past its end in D1, but its last token is within clock tolerance.
    laterBy(10);
    expect((await verify(lastToken)).status).toBe(200);
    const other = await signIn(user.email);
    const out = await call('/auth/logout-all', { method: 'POST', headers: bearer(other.access_token), env: e });
    expect(out.status).toBe(200);
    expect((await verify(lastToken)).status).toBe(401);
    expect((await verify(other.access_token)).status).toBe(401);
  });
});
