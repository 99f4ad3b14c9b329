/**
 * Shared by the second-factor routes: who the browser is (or a redirect to sign in), whether
 * its sign-in is recent enough to change factors (or a redirect to step up), and how a form
 * error becomes the same page again.
 */
import type { Context } from 'hono';
import { isRecentSignIn } from '../auth/recent-sign-in';
import type { AppEnv, AuthUser } from '../env';
import { wantsHtml } from '../http/client';
import { readRefreshCookie } from '../http/cookies';
import { invalidToken } from '../http/errors';
import { requireAuth } from '../middleware/require-auth';
import { insufficientUserAuthentication } from '../proxy/step-up';
import { findUserById, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';

/** A browser without a usable session: refresh if it can, else sign in; back to `back` after. */
export function signInRedirect(c: Context<AppEnv>, back: string): Response {
  const prefix = c.get('config').AUTH_PREFIX;
  const rt = encodeURIComponent(back);
  c.header('cache-control', 'no-store');
  return c.redirect(readRefreshCookie(c) ? `${prefix}/refresh?return_to=${rt}` : `${prefix}/login?return_to=${rt}`, 302);
}

/** requireAuth(), sending a browser navigation to sign in (and back to `back`) instead of a 401. */
export const browserAuth = (back: (c: Context<AppEnv>) => string) =>
  requireAuth({ onUnauthenticated: (c) => (wantsHtml(c) ? signInRedirect(c, back(c)) : undefined) });

/** The signed-in user's current record; a disabled or deleted one is signed out. */
export async function currentUser(c: Context<AppEnv>): Promise<User> {
  const user = await findUserById(c.env.DB, c.get('user').id);
  if (!user || user.disabledAt !== null) throw invalidToken('The session has ended.');
  return user;
}

/**
 * Null if the session's sign-in is within `RECENT_AUTH_SECONDS`; else the way to re-authenticate:
 * a browser goes to the step-up page and comes back to `back`, an API client gets RFC 9470's 401.
 */
export function needsRecentSignIn(c: Context<AppEnv>, auth: AuthUser, back: string): Response | null {
  const config = c.get('config');
  if (isRecentSignIn(auth.authTime, now(), config.RECENT_AUTH_SECONDS)) return null;
  const stepUp = `${config.AUTH_PREFIX}/step-up?return_to=${encodeURIComponent(back)}`;
  if (wantsHtml(c) || (c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
    c.header('cache-control', 'no-store');
    return c.redirect(stepUp, 303);
  }
  throw insufficientUserAuthentication({ missing: [], maxAge: config.RECENT_AUTH_SECONDS }, `${config.PUBLIC_URL}${stepUp}`);
}
