/**
 * Refuses cross-site unsafe requests that a browser could send with the user's cookies.
 *
 * Hand-written rather than hono's `csrf()` because that helper only looks at form content
 * types; a cross-site `fetch` with `text/plain` or a JSON body must be refused too. It reads
 * Fetch Metadata (`Sec-Fetch-Site`) first and falls back to `Origin`. Requests without gateway
 * cookies (bearer clients) are not affected unless `always` is set (used for form posts, to stop
 * login CSRF).
 *
 * @example
 * app.post('/auth/logout', sameOrigin(), handler)
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import { hasSessionCookie } from '../http/cookies';
import { ApiError } from '../http/errors';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isCrossSite(c: Context<AppEnv>, trustedOrigins: readonly string[]): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  const origin = c.req.header('origin');
  if (origin !== undefined) return !trustedOrigins.includes(origin);
  return false; // neither header: not a browser request that could carry a forged cross-site intent
}

export interface SameOriginOptions {
  /** Check even requests without gateway cookies (HTML form posts). */
  always?: boolean;
}

export function sameOrigin(options: SameOriginOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!SAFE_METHODS.has(c.req.method)) {
      const contentType = c.req.header('content-type') ?? '';
      const isForm = /^(application\/x-www-form-urlencoded|multipart\/form-data|text\/plain)/i.test(contentType);
      // A request with an Authorization header authenticates by it, not by cookies, and a
      // cross-site page cannot add that header without a CORS preflight we never approve.
      const cookieAuthenticated = hasSessionCookie(c) && c.req.header('authorization') === undefined;
      if ((options.always || isForm || cookieAuthenticated) && isCrossSite(c, [c.get('config').PUBLIC_URL])) {
        throw new ApiError('forbidden', 'Cross-site request refused.');
      }
    }
    await next();
  };
}
