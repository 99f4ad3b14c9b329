/**
 * Parallel guesses must not bypass the per-account back-off. Each attempt is
 * reserved in D1 in one conditional statement before the password is checked, so however many
 * requests arrive at once, no more passwords are checked than the back-off allows.
 *
 * The clock is held still during each burst (Date.now is mocked, for the gateway too: it runs
 * in this isolate), so no wait of the schedule can pass mid-burst: the counts are exact.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { reserveAttempt, waitSeconds } from '../../../src/auth/login-throttle';
import { baseEnv, call, countRows, GOOD_PASSWORD, makeEnv, registerUser, uniqueEmail, type TestEnv } from '../support/helpers';

afterEach(() => vi.restoreAllMocks());

async function counter(email: string) {
  return baseEnv.DB.prepare('SELECT count, window_start, last_failure_at FROM login_failures WHERE email = ?')
    .bind(email)
    .first<{ count: number; window_start: number; last_failure_at: number }>();
}

/** `n` simultaneous sign-ins from `n` different IPs (so the per-IP burst limit plays no part). */
async function burst(env: TestEnv, email: string, password: string, n = 20) {
  const t = Date.now();
  vi.spyOn(Date, 'now').mockReturnValue(t);
  const responses = await Promise.all(
    Array.from({ length: n }, (_, i) => call('/auth/login', { env, json: { email, password }, headers: { 'cf-connecting-ip': `198.51.100.${i + 1}` } })),
  );
  vi.restoreAllMocks();
  const codes = await Promise.all(responses.map(async (r) => ({ status: r.status, error: ((await r.json()) as { error: string }).error, retryAfter: r.headers.get('retry-after') })));
  const checked = codes.filter((c) => c.status === 401);
  const refused = codes.filter((c) => c.status === 429);
  for (const c of checked) expect(c.error).toBe('invalid_credentials');
  for (const c of refused) {
    expect(c.error).toBe('rate_limited');
    expect(Number(c.retryAfter)).toBeGreaterThanOrEqual(1);
  }
  expect(checked.length + refused.length).toBe(n);
  return { checked: checked.length, refused: refused.length, at: t };
}

describe('parallel wrong guesses and the per-account back-off', () => {
  it('LOGIN_BACKOFF_AFTER=1: of 20 simultaneous wrong guesses exactly one password is checked, the rest get 429', async () => {
    const env = makeEnv({ LOGIN_BACKOFF_AFTER: '1' });
    const user = await registerUser(undefined, undefined, env);
    const { checked, refused } = await burst(env, user.user.email, 'wrong password number one');
    expect(checked).toBe(1);
    expect(refused).toBe(19);
    // Each checked password leaves an audit row; the counter holds exactly the checked attempts.
    expect(await countRows('auth_events', "event = 'login' AND outcome = 'failure' AND user_id = ?", user.user.id)).toBe(1);
    expect((await counter(user.user.email))?.count).toBe(1);
  });

  it('LOGIN_BACKOFF_AFTER=3: never more checks than free attempts, however many arrive at once', async () => {
    const env = makeEnv({ LOGIN_BACKOFF_AFTER: '3' });
    const user = await registerUser(undefined, undefined, env);
    const { checked } = await burst(env, user.user.email, 'wrong password number two');
    expect(checked).toBe(3);
    expect((await counter(user.user.email))?.count).toBe(3);
  });

  it('unknown emails are reserved the same way: the same 401/429 split, so the answer reveals no account', async () => {
    const env = makeEnv({ LOGIN_BACKOFF_AFTER: '1' });
    const ghost = uniqueEmail('ghost-race');
    const { checked, refused } = await burst(env, ghost, 'wrong password number one');
    expect(checked).toBe(1);
    expect(refused).toBe(19);
    expect((await counter(ghost))?.count).toBe(1);
    expect(await countRows('users', 'email = ?', ghost)).toBe(0);
  });

  it('a success clears the reserved attempts; while backing off even the right password is not checked', async () => {
    const env = makeEnv({ LOGIN_BACKOFF_AFTER: '1' });
    const user = await registerUser(undefined, undefined, env);
    const { checked, at } = await burst(env, user.user.email, 'wrong password number three');
    expect(checked).toBe(1);
    const signIn = async (ms: number) => {
      vi.spyOn(Date, 'now').mockReturnValue(ms);
      const r = await call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } });
      vi.restoreAllMocks();
      return r;
    };
    // Same instant as the burst: the account is backing off (1 s after one failure).
    const early = await signIn(at);
    expect(early.status).toBe(429);
    expect(((await early.json()) as { error: string }).error).toBe('rate_limited');
    expect((await counter(user.user.email))?.count).toBe(1);
    // Once the wait is over the right password signs in and clears the counter.
    const ok = await signIn(at + 1000);
    expect(ok.status).toBe(200);
    expect(await counter(user.user.email)).toBeNull();
  });
});

describe('reserveAttempt (the one-statement reservation) agrees with the documented schedule', () => {
  it('reserves exactly when waitSeconds is 0, and then counts the attempt', async () => {
    const config = { LOGIN_FAILURE_LIMIT: 12, LOGIN_BACKOFF_AFTER: 3, LOGIN_BACKOFF_MAX: 20 };
    const t = 2_000_000;
    const email = uniqueEmail('schedule');
    let cases = 0;
    for (const count of [0, 1, 2, 3, 4, 5, 8, 11, 12, 40, 200]) {
      for (const sinceStart of [0, 100, 3599, 3600, 7200]) {
        for (const sinceLast of [0, 1, 2, 3, 7, 8, 19, 20, 21]) {
          if (sinceLast > sinceStart) continue;
          const counterRow = { count, windowStart: t - sinceStart, lastFailureAt: t - sinceLast };
          await baseEnv.DB.prepare('INSERT OR REPLACE INTO login_failures (email, count, window_start, last_failure_at) VALUES (?, ?, ?, ?)')
            .bind(email, count, counterRow.windowStart, counterRow.lastFailureAt)
            .run();
          const allowed = waitSeconds(counterRow, config, t) === 0;
          const reserved = await reserveAttempt(baseEnv.DB, email, config, t);
          const label = JSON.stringify({ count, sinceStart, sinceLast });
          expect(reserved !== null, label).toBe(allowed);
          const expected = !allowed ? counterRow : sinceStart >= 3600 ? { count: 1, windowStart: t, lastFailureAt: t } : { count: count + 1, windowStart: t - sinceStart, lastFailureAt: t };
          expect(await counter(email), label).toEqual({ count: expected.count, window_start: expected.windowStart, last_failure_at: expected.lastFailureAt });
          cases += 1;
        }
      }
    }
    expect(cases).toBeGreaterThan(100);
  });
});
