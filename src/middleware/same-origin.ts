/**
 * Middleware over auth/cross-site.ts, for the gateway's own endpoints.
 */
import type { MiddlewareHandler } from 'hono';
import { refuseCrossSite, type CrossSiteOptions } from '../auth/cross-site';
import type { AppEnv } from '../env';

export type SameOriginOptions = CrossSiteOptions;

/**
 * Refuses (403 `forbidden`) cross-site unsafe requests that a browser could send with the
 * user's cookies, and cookie-authenticated unsafe requests that do not say where they come
 * from. With `always`, requests without gateway cookies are checked too (form posts: login CSRF).
 *
 * @example
 * app.post('/auth/logout', sameOrigin(), handler)
 * app.post('/auth/login', sameOrigin({ always: true }), handler)
 */
export function sameOrigin(options: SameOriginOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    refuseCrossSite(c, options);
    await next();
  };
}
