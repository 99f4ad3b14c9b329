/**
 * Middleware over auth/directory-reads.ts: after a gateway endpoint has changed the directory
 * for a browser, the browser gets the bookmark that lets its next requests read those changes
 * back from a replica.
 */
import type { MiddlewareHandler } from 'hono';
import { rememberDirectoryWrites } from '../auth/directory-reads';
import type { AppEnv } from '../env';
import { ACCESS_COOKIE, hasSessionCookie } from '../http/cookies';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface DirectoryBookmarkOptions {
  /** Paths under the auth prefix that change only sessions (their objects) or audit rows: nothing to read back. */
  except?: RegExp;
  /** Also after a successful GET (a provider's callback signs in, and so writes). */
  reads?: boolean;
}

/**
 * After a browser's successful (below 400) unsafe request, sets the directory bookmark cookie:
 * one small query on the primary, on requests that have just written there anyway. A browser's:
 * it carries the gateway's cookies or has just been given them (a sign-in); a token-mode client
 * gets no cookie.
 *
 * @example
 * auth.use('*', directoryBookmark({ except: /^\/refresh$/ }))
 */
export function directoryBookmark(options: DirectoryBookmarkOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    if (c.res.status >= 400 || (READS.has(c.req.method) && !options.reads)) return;
    if (options.except?.test(c.req.path.slice(c.get('config').AUTH_PREFIX.length))) return;
    const browser = hasSessionCookie(c) || c.res.headers.getSetCookie().some((line) => line.startsWith(`${ACCESS_COOKIE}=`));
    if (browser) await rememberDirectoryWrites(c);
  };
}
