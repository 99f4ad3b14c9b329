/**
 * Redirects plain-HTTP requests to HTTPS (301 for GET/HEAD, 308 otherwise so the method and
 * body survive). Only `localhost` (and `*.localhost` names, which browsers resolve to loopback
 * and treat as secure: the dev app hosts of README "Hosts") in development may stay on HTTP.
 *
 * @example
 * app.use('*', httpsOnly())
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export function httpsOnly(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // A request URL is serialised with its scheme in lower case, so the prefix decides; the URL
    // is parsed only for the redirect (a parse costs ~3 µs, and the proxy parses it again).
    if (!c.req.url.startsWith('http:')) return next();
    const url = new URL(c.req.url);
    if (!(c.get('config').isDevelopment && (LOCAL_HOSTS.has(url.hostname) || url.hostname.endsWith('.localhost')))) {
      url.protocol = 'https:';
      const status = c.req.method === 'GET' || c.req.method === 'HEAD' ? 301 : 308;
      return new Response(null, { status, headers: { location: url.href, 'cache-control': 'no-store' } });
    }
    await next();
  };
}
