/**
 * The one function that decides where a user may be sent after sign-in, sign-out or an OAuth
 * callback. Anything that is not plainly on `PUBLIC_URL`'s origin or an origin listed in
 * `ALLOWED_RETURN_ORIGINS` becomes `/`.
 */
import type { Config } from '../config/schema';

export const DEFAULT_RETURN_TO = '/';

// Control characters, whitespace and backslashes are how `//evil.com` tricks get past parsers
// that differ from the browser's; encoded slashes and backslashes likewise.
const SUSPICIOUS = /[\u0000-\u0020\u007f\\]|%(2f|5c|09|0a|0d|00)/i;

export function safeReturnTo(value: unknown, config: Pick<Config, 'PUBLIC_URL' | 'ALLOWED_RETURN_ORIGINS'>): string {
  if (typeof value !== 'string' || value === '' || value.length > 2048 || SUSPICIOUS.test(value)) return DEFAULT_RETURN_TO;
  let url: URL;
  try {
    url = new URL(value, config.PUBLIC_URL);
  } catch {
    return DEFAULT_RETURN_TO;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return DEFAULT_RETURN_TO;
  if (url.username || url.password) return DEFAULT_RETURN_TO;
  if (url.origin === config.PUBLIC_URL) {
    // A path on our own origin: keep it relative so nothing about the host is trusted.
    return url.pathname.startsWith('//') ? DEFAULT_RETURN_TO : `${url.pathname}${url.search}${url.hash}`;
  }
  if (config.ALLOWED_RETURN_ORIGINS.includes(url.origin)) return url.href;
  return DEFAULT_RETURN_TO;
}

/** A page on an app host to return to after single sign-on: its origin and its path with query. */
export interface HostReturnTo {
  origin: string;
  /** The path and query on that host (never `//…`: always a path of that origin). */
  path: string;
  href: string;
}

/**
 * A `return_to` for an app host (README "Hosts"): an absolute URL whose host `isAppHost` says
 * the routes serve, https (http only in development), with no credentials, no fragment and
 * nothing `safeReturnTo` would find suspicious. Null otherwise: the gateway hands no session
 * to a host it does not serve.
 */
export function hostReturnTo(value: unknown, config: Pick<Config, 'isDevelopment'>, isAppHost: (host: string) => boolean): HostReturnTo | null {
  if (typeof value !== 'string' || value.length > 2048 || SUSPICIOUS.test(value) || !URL.canParse(value)) return null;
  const url = new URL(value);
  const scheme = url.protocol === 'https:' || (config.isDevelopment && url.protocol === 'http:');
  if (!scheme || url.username || url.password || !isAppHost(url.host)) return null;
  return { origin: url.origin, path: onHost(`${url.pathname}${url.search}`), href: `${url.origin}${onHost(`${url.pathname}${url.search}`)}` };
}

/** A path to go to on the host it is used on: kept if it is plainly one (`/…`, not `//…`), else `/`. */
export function onHost(path: string): string {
  return path.startsWith('/') && !path.startsWith('//') && !SUSPICIOUS.test(path) ? path : DEFAULT_RETURN_TO;
}
