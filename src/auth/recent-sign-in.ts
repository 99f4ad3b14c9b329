/**
 * "Recent sign-in": the session's user authenticated (`auth_time`) within `RECENT_AUTH_SECONDS`.
 * Every change to how an account is reached (a second factor, a passkey, a linked sign-in
 * method, a password, the address) and deleting it need one; the email change and deletion
 * also accept the password in its place, which a provider-only account does not have. One
 * function and one setting, so one window applies everywhere: callers pass the setting, there
 * is no default to drift from it.
 */

/**
 * @example
 * isRecentSignIn(c.get('user').authTime, nowSeconds(), c.get('config').RECENT_AUTH_SECONDS)
 */
export function isRecentSignIn(authTime: number, now: number, windowSeconds: number): boolean {
  return authTime <= now + 60 && now - authTime <= windowSeconds;
}
