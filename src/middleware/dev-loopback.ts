/**
 * Development only: a request for another loopback name than `PUBLIC_URL`'s (127.0.0.1, [::1]
 * or localhost, same port) is sent to `PUBLIC_URL`'s host first, same path and query. Cookies
 * are per host and `return_to` must be on `PUBLIC_URL`, so a gateway opened at 127.0.0.1 while
 * `PUBLIC_URL` says localhost would lose the OAuth flow cookie on the callback and drop
 * `return_to` after a password sign-in. 307 keeps the method and body. Never in production.
 *
 * Forward-auth is exempt: a proxy calls it server to server, and to nginx a redirect there is
 * an error, not a hint.
 *
 * @example
 * app.use('*', devLoopback())
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function devLoopback(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const config = c.get('config');
    if (config.isDevelopment) {
      const url = new URL(c.req.url);
      const canonical = new URL(config.PUBLIC_URL);
      if (
        url.hostname !== canonical.hostname &&
        LOOPBACK.has(url.hostname) &&
        LOOPBACK.has(canonical.hostname) &&
        url.port === canonical.port &&
        url.pathname !== `${config.AUTH_PREFIX}/verify`
      ) {
        url.protocol = canonical.protocol;
        url.host = canonical.host;
        return new Response(null, { status: 307, headers: { location: url.href, 'cache-control': 'no-store' } });
      }
    }
    await next();
  };
}
