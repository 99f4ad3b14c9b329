/**
 * Middleware over auth/directory-reads.ts: after a gateway endpoint has changed the directory,
 * the browser gets the bookmark that lets its next requests read those changes back from a
 * replica.
 */
import type { MiddlewareHandler } from 'hono';
import { rememberDirectoryWrites } from '../auth/directory-reads';
import type { AppEnv } from '../env';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface DirectoryBookmarkOptions {
  /** Paths under the auth prefix whose writes nobody reads back (refresh, sign-out: audit rows). */
  except?: readonly string[];
  /** Also after a successful GET (a provider's callback signs in, and so writes). */
  reads?: boolean;
}

/**
 * After a successful (below 400) unsafe request, sets the directory bookmark cookie: one small
 * query on the primary, on requests that have just written there anyway.
 *
 * @example
 * auth.use('*', directoryBookmark({ except: ['/refresh'] }))
 */
export function directoryBookmark(options: DirectoryBookmarkOptions = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    if (c.res.status >= 400 || (READS.has(c.req.method) && !options.reads)) return;
    const path = c.req.path.slice(c.get('config').AUTH_PREFIX.length);
    if (options.except?.includes(path)) return;
    await rememberDirectoryWrites(c);
  };
}
