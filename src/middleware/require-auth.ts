/**
 * Authenticates the request and sets a typed `c.get('user')`.
 *
 * The token comes from `Authorization: Bearer` or the `__Host-gatehouse` cookie, never from
 * the URL. It must verify against our keys (pinned algorithm, `iss`, `aud`, required claims),
 * and neither its `jti` nor its session `sid` may be revoked: both are checked in one KV call.
 *
 * @example
 * app.get('/auth/me', requireAuth(), (c) => c.json(c.get('user')))
 * app.get('/maybe', requireAuth({ optional: true }), (c) => c.text(c.var.user?.email ?? 'anonymous'))
 * app.post('/logout', requireAuth({ optional: true, staleCookieIsAnonymous: true }), handler)
 */
import type { Context, MiddlewareHandler } from 'hono';
import { recordEventInBackground } from '../auth/events';
import type { AppEnv, AuthUser } from '../env';
import { readAccessCookie } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { isRevoked } from '../storage/revocation';
import { verifyAccessToken } from '../tokens/access-token';

export interface RequireAuthOptions {
  /** Let anonymous requests through without `user` (a bad or revoked token is still refused). */
  optional?: boolean;
  /**
   * With `optional`: an access cookie that no longer verifies (expired, revoked) counts as
   * absent. For sign-out, which a browser whose access cookie has expired must still reach.
   */
  staleCookieIsAnonymous?: boolean;
}

/** The presented token and where it came from, or null. Never looks at the query string. */
export function presentedToken(c: Context<AppEnv>): { token: string; via: 'bearer' | 'cookie' } | null {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
    if (!match) throw invalidToken('The Authorization header must be "Bearer <token>".');
    return { token: match[1]!, via: 'bearer' };
  }
  const cookie = readAccessCookie(c);
  return cookie ? { token: cookie, via: 'cookie' } : null;
}

/** Verifies a token fully (signature, claims, revocation). Throws `invalid_token` or `unavailable`. */
export async function authenticate(c: Context<AppEnv>, token: string): Promise<AuthUser> {
  const config = c.get('config');
  const claims = await verifyAccessToken(
    { keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: config.accessTokenAudience },
    token,
  );
  if (await isRevoked(c.env.REVOKED, claims.jti, claims.sid)) {
    recordEventInBackground(c, { event: 'revoked_token_presented', outcome: 'security', userId: claims.sub, detail: { sid: claims.sid } });
    throw invalidToken('The access token has been revoked.');
  }
  return {
    id: claims.sub,
    email: claims.email,
    emailVerified: claims.email_verified,
    roles: claims.roles,
    sessionId: claims.sid,
    tokenId: claims.jti,
    tokenExpiresAt: claims.exp,
    issuedAt: claims.iat,
  };
}

export function requireAuth(options: RequireAuthOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const presented = presentedToken(c);
    if (!presented) {
      if (options.optional) return next();
      throw invalidToken('Sign in first: no access token was sent.');
    }
    let user: AuthUser;
    try {
      user = await authenticate(c, presented.token);
    } catch (e) {
      const stale = e instanceof ApiError && e.code === 'invalid_token' && presented.via === 'cookie';
      if (stale && options.optional && options.staleCookieIsAnonymous) return next();
      throw e;
    }
    c.set('user', user);
    c.set('authVia', presented.via);
    await next();
  };
}

export function requireRole(role: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.get('user')?.roles.includes(role)) throw new ApiError('forbidden', `This requires the "${role}" role.`);
    await next();
  };
}
