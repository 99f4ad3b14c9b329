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
