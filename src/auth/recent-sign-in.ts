/**
 * "Recent sign-in": the session's user authenticated (`auth_time`) within the last few minutes.
 * Sensitive changes (deleting the account, changing its email) accept this in place of the
 * password, which a provider-only account does not have. One function, so one window applies
 * everywhere (the second-factor work's RECENT_AUTH setting can replace the default here).
 */

/** Five minutes: long enough to sign in again and act, short enough that a left-open tab is not enough. */
export const RECENT_SIGN_IN_SECONDS = 300;

/**
 * @example
 * isRecentSignIn(c.get('user').authTime, nowSeconds()) // true within 5 minutes of signing in
 */
export function isRecentSignIn(authTime: number, now: number, windowSeconds = RECENT_SIGN_IN_SECONDS): boolean {
  return authTime <= now + 60 && now - authTime <= windowSeconds;
}
