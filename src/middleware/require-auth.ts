/**
 * Middleware over auth/authenticate.ts: who the caller is, and which role they need.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { authenticate, presentedToken } from '../auth/authenticate';
import type { AppEnv, AuthUser } from '../env';
import { ApiError, invalidToken } from '../http/errors';

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
