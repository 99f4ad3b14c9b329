/**
 * The one "recent sign-in" rule (issue 12): adding or removing a factor, and any other account
 * change that needs a re-authentication, is allowed only if the session's sign-in (its
 * `auth_time`, which a step-up renews) is within `RECENT_AUTH_SECONDS`. Not the session's
 * creation time: a step-up on an old session counts as a fresh sign-in, a refresh does not.
 */
import type { Config } from '../config/schema';
import { nowSeconds } from '../util/time';

/** True if a sign-in at `authTime` (seconds) is recent enough for a sensitive account change. */
export function isRecentSignIn(authTime: number, config: Pick<Config, 'RECENT_AUTH_SECONDS'>, now: number = nowSeconds()): boolean {
  return now - authTime <= config.RECENT_AUTH_SECONDS;
}
