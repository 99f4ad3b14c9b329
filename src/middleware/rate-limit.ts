/**
 * Burst limits per client IP through the Workers Rate Limiting binding `RATE_LIMITER`.
 *
 * Every guarded action has its own bucket (`<action>:<ip>`) counted against the binding's
 * `simple = { limit, period }`. An action gets its own limit from an optional binding named
 * `RATE_LIMITER_<ACTION>` (e.g. `RATE_LIMITER_LOGIN`); without one it shares `RATE_LIMITER`'s.
 * The client IP is `CF-Connecting-IP` only (the edge sets it; `X-Forwarded-For` is the
 * client's to forge). Without the binding the gateway still works and says so once in the log.
 * A limiter that throws fails closed: 503, since an exception in middleware never lets a
 * request through. Each refusal is also counted per action and hour for the console's Health
 * area (observability/rate-limit-hits.ts: a few writes a second per isolate at most, after the
 * response); a request the limiter lets through costs nothing more. The per-account sign-in
 * back-off lives in D1 (auth/login-throttle.ts).
 *
 * @example
 * app.post('/auth/login', rateLimit('login'), handler)
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv, Env } from '../env';
import { clientIp } from '../http/client';
import { ApiError, unavailable } from '../http/errors';
import { log } from '../observability/log';
import type { countRateLimitHit } from '../observability/rate-limit-hits';

/** Every guarded action (each has a bucket, a binding of its own if configured, and a count on the Health page). */
export const RATE_LIMITED_ACTIONS = ['login', 'register', 'refresh', 'oauth', 'verify_failure', 'account_mail', 'passkey', 'register_client', 'scim'] as const;
export type RateLimitedAction = (typeof RATE_LIMITED_ACTIONS)[number];

/** The optional binding that gives an action a limit of its own. */
const ACTION_LIMITERS = {
  login: 'RATE_LIMITER_LOGIN',
  register: 'RATE_LIMITER_REGISTER',
  refresh: 'RATE_LIMITER_REFRESH',
  oauth: 'RATE_LIMITER_OAUTH',
  verify_failure: 'RATE_LIMITER_VERIFY_FAILURE',
  // Requests that mail a link (forgot password, resend verification) and reset attempts.
  account_mail: 'RATE_LIMITER_ACCOUNT_MAIL',
  passkey: 'RATE_LIMITER_PASSKEY',
  // Dynamic client registration: each success stores a client that never expires on its own.
  register_client: 'RATE_LIMITER_REGISTER_CLIENT',
  // The directory's provisioning calls (SCIM): each may write users and groups.
  scim: 'RATE_LIMITER_SCIM',
} as const satisfies Record<RateLimitedAction, keyof Env>;

/** The name of the binding that limits `action`: its own if bound, else `RATE_LIMITER`, else null (no limit). */
export function limiterBindingOf(env: Env, action: RateLimitedAction): string | null {
  if (env[ACTION_LIMITERS[action]]) return ACTION_LIMITERS[action];
  return env.RATE_LIMITER ? 'RATE_LIMITER' : null;
}

let missingReported = false;

/**
 * Counts a refusal for the Health page (observability/rate-limit-hits.ts): loaded on the first
 * refusal of an isolate, so start-up and every request the limiter lets through evaluate none of it.
 */
let countHit: typeof countRateLimitHit | undefined;

/** Requests without `CF-Connecting-IP` (local tools, tests) share one bucket per action. */
const UNKNOWN_IP = 'unknown';

export function rateLimitError(period: number): ApiError {
  return new ApiError('rate_limited', 'Too many requests from your network. Try again shortly.', { retryAfter: period });
}

/**
 * Counts one request of `action` for the client and throws `rate_limited` (429) when over the
 * limit, or `unavailable` (503) when the limiter itself fails. For use inside handlers (e.g.
 * counting only failures); the middleware below is the usual way in.
 */
export async function checkRateLimit(c: Context<AppEnv>, action: RateLimitedAction): Promise<void> {
  const limiter = c.env[ACTION_LIMITERS[action]] ?? c.env.RATE_LIMITER;
  if (!limiter) {
    if (!missingReported) {
      missingReported = true;
      log.warn('rate_limiter_missing', { message: 'No RATE_LIMITER binding: per-IP burst limits are off. Add [[ratelimits]] to wrangler.toml.' });
    }
    return;
  }
  const config = c.get('config');
  let outcome: RateLimitOutcome;
  try {
    outcome = await limiter.limit({ key: `${action}:${clientIp(c) ?? UNKNOWN_IP}` });
  } catch (e) {
    log.error('rate_limiter_failed', { action, error: e instanceof Error ? e.message : String(e) });
    throw unavailable('Gatehouse cannot check its rate limits right now. Try again shortly.');
  }
  if (!outcome.success) {
    log.warn('rate_limited', { action, ip: clientIp(c) });
    // A module that fails to load costs the count, never the 429 (tried again on the next refusal).
    countHit ??= await import('../observability/rate-limit-hits').then((m) => m.countRateLimitHit, () => undefined);
    countHit?.(c, action);
    throw rateLimitError(config.RATE_LIMIT_PERIOD);
  }
}

/**
 * Counts only the refusals (401, 403) of `action`, after the handler has answered: a client
 * guessing tokens or probing routes is slowed down, signed-in traffic never is. Once the client
 * is over the limit its further refusals become 429 (a passing request still passes).
 *
 * @example
 * app.get('/auth/verify', rateLimitRefusals('verify_failure'))
 */
export function rateLimitRefusals(action: RateLimitedAction): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    if (c.res.status === 401 || c.res.status === 403) await checkRateLimit(c, action);
  };
}

export function rateLimit(action: RateLimitedAction): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await checkRateLimit(c, action);
    await next();
  };
}
