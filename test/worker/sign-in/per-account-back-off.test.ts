/**
 * The per-account failed sign-in back-off in D1 (auth/login-throttle.ts). Time is simulated
 * by writing the counter row, never by waiting.
 */
import { describe, expect, it } from 'vitest';
import { burstThreshold, waitSeconds } from '../../../src/auth/login-throttle';
import { baseEnv, call, countRows, GOOD_PASSWORD, registerUser, stateSnapshot, uniqueEmail } from '../support/helpers';

const now = () => Math.floor(Date.now() / 1000);
const settings = { LOGIN_FAILURE_LIMIT: 100, LOGIN_BACKOFF_AFTER: 5, LOGIN_BACKOFF_MAX: 900 };

async function counter(email: string) {
  return baseEnv.DB.prepare('SELECT count, window_start, last_failure_at FROM login_failures WHERE email = ?')
    .bind(email)
    .first<{ count: number; window_start: number; last_failure_at: number }>();
}

async function setCounter(email: string, count: number, windowStart: number, lastFailureAt: number) {
  await baseEnv.DB.prepare(
    'INSERT INTO login_failures (email, count, window_start, last_failure_at) VALUES (?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET count = excluded.count, window_start = excluded.window_start, last_failure_at = excluded.last_failure_at',
  )
    .bind(email, count, windowStart, lastFailureAt)
    .run();
}

const login = (email: string, password: string, headers?: Record<string, string>) => call('/auth/login', { json: { email, password }, headers });

describe('waitSeconds (the back-off schedule)', () => {
  const t = 1_000_000;
  it('is free below LOGIN_BACKOFF_AFTER, then doubles per failure up to LOGIN_BACKOFF_MAX', () => {
    expect(waitSeconds(null, settings, t)).toBe(0);
    expect(waitSeconds({ count: 4, windowStart: t, lastFailureAt: t }, settings, t)).toBe(0);
    expect(waitSeconds({ count: 5, windowStart: t, lastFailureAt: t }, settings, t)).toBe(1);
    expect(waitSeconds({ count: 6, windowStart: t, lastFailureAt: t }, settings, t)).toBe(2);
    expect(waitSeconds({ count: 9, windowStart: t, lastFailureAt: t }, settings, t)).toBe(16);
    expect(waitSeconds({ count: 9, windowStart: t, lastFailureAt: t }, settings, t + 10)).toBe(6);
    expect(waitSeconds({ count: 9, windowStart: t, lastFailureAt: t }, settings, t + 16)).toBe(0);
    expect(waitSeconds({ count: 40, windowStart: t, lastFailureAt: t }, settings, t)).toBe(900);
  });

  it('after LOGIN_FAILURE_LIMIT failures waits for the window to end, and never longer than the window', () => {
    expect(waitSeconds({ count: 100, windowStart: t - 600, lastFailureAt: t }, settings, t)).toBe(3000);
    expect(waitSeconds({ count: 10_000, windowStart: t - 3600, lastFailureAt: t }, settings, t)).toBe(0);
    expect(waitSeconds({ count: 60, windowStart: t - 3500, lastFailureAt: t }, settings, t)).toBe(100);
    expect(burstThreshold(settings)).toBe(10);
  });
});

describe('per-account back-off on POST /auth/login', () => {
  it('counts wrong passwords, then refuses even the right one with 429 and Retry-After while backing off, without creating a session', async () => {
    const user = await registerUser();
    const email = user.user.email;
    for (let i = 0; i < 3; i++) expect((await login(email, 'wrong password here!')).status).toBe(401);
    expect((await counter(email))?.count).toBe(3);

    await setCounter(email, 7, now() - 5, now());
    const before = await stateSnapshot();
    const refused = await login(email, GOOD_PASSWORD, { 'cf-connecting-ip': '192.0.2.200' });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(4);
    expect(await refused.json()).toEqual({ error: 'rate_limited', error_description: 'Too many failed sign-ins for this account. Try again later.' });
    expect(await stateSnapshot()).toEqual(before);
    // A refused attempt is not a failure: the password was never checked.
    expect((await counter(email))?.count).toBe(7);

    // Once the wait is over the real user gets in, and the counter is cleared.
    await setCounter(email, 7, now() - 100, now() - 100);
    expect((await login(email, GOOD_PASSWORD)).status).toBe(200);
    expect(await counter(email)).toBeNull();
  });

  it('after LOGIN_FAILURE_LIMIT failures the account waits for the hour to end, then starts afresh (no permanent lockout)', async () => {
    const user = await registerUser();
    const email = user.user.email;
    await setCounter(email, 100, now() - 100, now() - 50);
    const refused = await login(email, GOOD_PASSWORD);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(3400);
    expect(retryAfter).toBeLessThanOrEqual(3500);

    await setCounter(email, 100, now() - 3601, now() - 3601);
    expect((await login(email, 'still the wrong one')).status).toBe(401);
    const fresh = await counter(email);
    expect(fresh?.count).toBe(1);
    expect(fresh!.window_start).toBeGreaterThan(now() - 5);
    expect((await login(email, GOOD_PASSWORD)).status).toBe(200);
  });

  it('counts unknown emails the same way, so a 429 does not reveal whether an account exists', async () => {
    const ghost = uniqueEmail('ghost');
    expect((await login(ghost, 'some password 123')).status).toBe(401);
    expect((await counter(ghost))?.count).toBe(1);
    await setCounter(ghost, 50, now() - 10, now());
    const r = await login(ghost, 'some password 123');
    expect(r.status).toBe(429);
    expect(await countRows('users', 'email = ?', ghost)).toBe(0);
  });

  it('a form post while backing off gets the sign-in page with the message, status 429 and Retry-After', async () => {
    const user = await registerUser();
    await setCounter(user.user.email, 100, now() - 10, now());
    const r = await call('/auth/login', {
      form: { email: user.user.email, password: GOOD_PASSWORD },
      headers: { 'sec-fetch-site': 'same-origin', accept: 'text/html' },
    });
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(3500);
    expect(r.headers.get('set-cookie')).toBeNull();
    expect(await r.text()).toContain('Too many failed sign-ins for this account');
  });

  it('the email is matched case-insensitively: changing case does not escape the back-off', async () => {
    const user = await registerUser();
    await setCounter(user.user.email, 100, now() - 10, now());
    expect((await login(user.user.email.toUpperCase(), GOOD_PASSWORD)).status).toBe(429);
  });
});
