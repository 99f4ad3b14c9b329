/**
 * Per-account back-off for password sign-in, counted in D1 (`login_failures`), so it holds
 * across IPs and locations where the per-IP burst limit does not.
 *
 * Within an hour's window an account gets `LOGIN_BACKOFF_AFTER` failures free; after that each
 * failure doubles the wait before the next attempt (1 s, 2 s, 4 s … up to `LOGIN_BACKOFF_MAX`),
 * and after `LOGIN_FAILURE_LIMIT` failures the account waits for the window to end. The wait is
 * checked before the password, so a guesser learns nothing while it lasts. Nothing is ever
 * permanent: the window ends an hour after its first failure and a success clears the count,
 * so an attacker can slow the real user down, never lock them out for good.
 *
 * Unknown emails are counted exactly like real ones: otherwise the 429 would reveal which
 * accounts exist. Housekeeping deletes counters whose window has ended.
 */
import type { Context } from 'hono';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { securityAlert } from '../observability/alerts';
import { normalizeEmail } from '../storage/users';

export const FAILURE_WINDOW_SECONDS = 3600;

export interface FailureCounter {
  count: number;
  windowStart: number;
  lastFailureAt: number;
}

type ThrottleConfig = Pick<Config, 'LOGIN_FAILURE_LIMIT' | 'LOGIN_BACKOFF_AFTER' | 'LOGIN_BACKOFF_MAX'>;

/** Seconds the account must still wait before the next attempt (0: may try now). */
export function waitSeconds(counter: FailureCounter | null, config: ThrottleConfig, now: number): number {
  if (!counter) return 0;
  const windowEnd = counter.windowStart + FAILURE_WINDOW_SECONDS;
  if (windowEnd <= now) return 0;
  if (counter.count >= config.LOGIN_FAILURE_LIMIT) return windowEnd - now;
  if (counter.count < config.LOGIN_BACKOFF_AFTER) return 0;
  const delay = Math.min(2 ** (counter.count - config.LOGIN_BACKOFF_AFTER), config.LOGIN_BACKOFF_MAX);
  return Math.max(0, Math.min(counter.lastFailureAt + delay, windowEnd) - now);
}

/** A burst worth an alert: twice the free failures, reported once per window. */
export const burstThreshold = (config: ThrottleConfig) => Math.min(config.LOGIN_BACKOFF_AFTER * 2, config.LOGIN_FAILURE_LIMIT);

export async function readFailures(db: D1Database, email: string): Promise<FailureCounter | null> {
  const row = await db
    .prepare('SELECT count, window_start, last_failure_at FROM login_failures WHERE email = ?')
    .bind(normalizeEmail(email))
    .first<{ count: number; window_start: number; last_failure_at: number }>();
  return row ? { count: row.count, windowStart: row.window_start, lastFailureAt: row.last_failure_at } : null;
}

/** Adds one failure, starting a new window if the last one has ended. One atomic statement. */
export async function addFailure(db: D1Database, email: string, now: number): Promise<FailureCounter> {
  const row = await db
    .prepare(
      `INSERT INTO login_failures (email, count, window_start, last_failure_at) VALUES (?1, 1, ?2, ?2)
       ON CONFLICT (email) DO UPDATE SET
         count = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE count + 1 END,
         window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END,
         last_failure_at = ?2
       RETURNING count, window_start, last_failure_at`,
    )
    .bind(normalizeEmail(email), now, FAILURE_WINDOW_SECONDS)
    .first<{ count: number; window_start: number; last_failure_at: number }>();
  return { count: row!.count, windowStart: row!.window_start, lastFailureAt: row!.last_failure_at };
}

export async function clearFailures(db: D1Database, email: string): Promise<void> {
  await db.prepare('DELETE FROM login_failures WHERE email = ?').bind(normalizeEmail(email)).run();
}

/** Housekeeping: deletes up to `limit` counters whose window ended before `now`. */
export async function deleteStaleFailures(db: D1Database, now: number, limit: number): Promise<number> {
  const r = await db
    .prepare('DELETE FROM login_failures WHERE email IN (SELECT email FROM login_failures WHERE window_start <= ? LIMIT ?)')
    .bind(now - FAILURE_WINDOW_SECONDS, limit)
    .run();
  return r.meta.changes;
}

const now = () => Math.floor(Date.now() / 1000);

/** Throws `rate_limited` with `Retry-After` while the account is backing off. */
export async function assertLoginAllowed(c: Context<AppEnv>, email: string): Promise<void> {
  const wait = waitSeconds(await readFailures(c.env.DB, email), c.get('config'), now());
  if (wait > 0) {
    throw new ApiError('rate_limited', 'Too many failed sign-ins for this account. Try again later.', { retryAfter: wait });
  }
}

/** Counts a failed sign-in; the failure that makes a burst raises a security alert. */
export async function recordLoginFailure(c: Context<AppEnv>, email: string, userId: string | null): Promise<void> {
  const counter = await addFailure(c.env.DB, email, now());
  if (userId && counter.count === burstThreshold(c.get('config'))) {
    await securityAlert(c, {
      event: 'login_failure_burst',
      userId,
      detail: { failures: counter.count, window_seconds: FAILURE_WINDOW_SECONDS, message: 'Many failed sign-ins for one account.' },
    });
  }
}

export async function recordLoginSuccess(c: Context<AppEnv>, email: string): Promise<void> {
  await clearFailures(c.env.DB, email);
}
