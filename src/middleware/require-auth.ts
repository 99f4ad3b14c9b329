/**
 * Middleware over auth/authenticate.ts: who the caller is, which role they need, and (for
 * browsers) where to go to sign in or to sign in again.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { authenticate, presentedToken } from '../auth/authenticate';
import { isRecentSignIn } from '../auth/recent-sign-in';
import type { AppEnv, AuthUser } from '../env';
import { wantsHtml } from '../http/client';
import { readRefreshCookie } from '../http/cookies';
import { ApiError, insufficientUserAuthentication, invalidToken } from '../http/errors';
import { nowSeconds as now } from '../util/time';

export interface RequireAuthOptions {
  /** Let anonymous requests through without `user` (a bad or revoked token is still refused). */
  optional?: boolean;
  /**
   * Called when the request is refused as `invalid_token` (no token, a malformed header, a
   * token that does not verify or is revoked): a response returned here is sent instead of the
   * JSON 401 (e.g. a browser sent to sign in); `undefined` keeps the 401.
   */
  onUnauthenticated?: (c: Context<AppEnv>, error: ApiError) => Response | undefined;
}

/**
 * Authenticates the request (bearer token or session cookie, fully verified including
 * revocation) and sets a typed `c.get('user')` and `c.get('authVia')`; refuses with a 401
 * `invalid_token` otherwise.
 *
 * @example
 * app.get('/auth/me', requireAuth(), (c) => c.json(c.get('user')))
 * app.get('/maybe', requireAuth({ optional: true }), (c) => c.text(c.var.user?.email ?? 'anonymous'))
 * app.get('/account', requireAuth({ onUnauthenticated: (c) => (wantsHtml(c) ? c.redirect('/auth/login') : undefined) }), page)
 */
export function requireAuth(options: RequireAuthOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let presented: ReturnType<typeof presentedToken>;
    let user: AuthUser | undefined;
    try {
      presented = presentedToken(c);
      if (!presented && !options.optional) throw invalidToken('Sign in first: no access token was sent.');
      if (presented) user = await authenticate(c, presented.token);
    } catch (e) {
      const answer = e instanceof ApiError && e.code === 'invalid_token' ? options.onUnauthenticated?.(c, e) : undefined;
      if (answer) return answer;
      throw e;
    }
    if (presented && user) {
      c.set('user', user);
      c.set('authVia', presented.via);
    }
    await next();
  };
}

/**
 * Refuses (403 `forbidden`) a user without `role`. Goes after `requireAuth()`.
 *
 * @example
 * app.get('/auth/admin/users', requireAuth(), requireRole('admin'), handler)
 */
export function requireRole(role: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.get('user')?.roles.includes(role)) throw new ApiError('forbidden', `This requires the "${role}" role.`);
    await next();
  };
}

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
