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
 * Every attempt is counted as a failure *before* its password is checked, in one conditional
 * statement that counts it only while the schedule allows an attempt (a reservation); a success
 * then clears the count. Reading the counter first and adding the failure after the check would
 * let any number of simultaneous guesses through the same free slot.
 *
 * Unknown emails are counted exactly like real ones: otherwise the 429 would reveal which
 * accounts exist. Housekeeping deletes counters whose window has ended.
 */
import type { Context } from 'hono';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { clearFailureCounter, readFailureCounter, reserveFailure, type FailureCounter } from '../storage/login-failures';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';

export const FAILURE_WINDOW_SECONDS = 3600;

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

/**
 * Reserves one attempt: counts it as a failure (starting a new window if the last one has
 * ended) only if the account may try now, i.e. exactly when {@link waitSeconds} is 0 (one
 * atomic statement, storage/login-failures.ts). Returns the counter including this attempt,
 * or null if refused.
 */
export async function reserveAttempt(db: D1Database, email: string, config: ThrottleConfig, now: number): Promise<FailureCounter | null> {
  const schedule = {
    windowSeconds: FAILURE_WINDOW_SECONDS,
    limit: config.LOGIN_FAILURE_LIMIT,
    backoffAfter: config.LOGIN_BACKOFF_AFTER,
    backoffMax: config.LOGIN_BACKOFF_MAX,
  };
  return reserveFailure(db, email, schedule, now);
}

/**
 * Reserves a password check for the account, or throws `rate_limited` with `Retry-After` while
 * it is backing off. The attempt counts as a failure until {@link recordLoginSuccess} clears it.
 */
export async function reserveLoginAttempt(c: Context<AppEnv>, email: string): Promise<FailureCounter> {
  const t = now();
  const reserved = await reserveAttempt(c.env.DB, email, c.get('config'), t);
  if (reserved) return reserved;
  // Refused: read the counter only to tell the client how long to wait (at least a second, as
  // a concurrent success may have cleared it meanwhile).
  const wait = waitSeconds(await readFailureCounter(c.env.DB, email), c.get('config'), t);
  throw new ApiError('rate_limited', 'Too many failed sign-ins for this account. Try again later.', { retryAfter: Math.max(1, wait) });
}

/** A reserved attempt failed (it is already counted); the failure that makes a burst raises a security alert. */
export async function recordLoginFailure(c: Context<AppEnv>, attempt: FailureCounter, userId: string | null): Promise<void> {
  if (userId && attempt.count === burstThreshold(c.get('config'))) {
    await recordEvent(c, {
      event: 'login_failure_burst',
      outcome: 'security',
      userId,
      detail: { failures: attempt.count, window_seconds: FAILURE_WINDOW_SECONDS, message: 'Many failed sign-ins for one account.' },
    });
  }
}

export async function recordLoginSuccess(c: Context<AppEnv>, email: string): Promise<void> {
  await clearFailureCounter(c.env.DB, email);
}
