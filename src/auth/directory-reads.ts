/**
 * Which copy of the directory (D1) a request reads (storage/directory.ts has the rules). Views
 * read through {@link directoryReads}: a replica near the user, no older than the bookmark the
 * browser got after its own last change. Security decisions keep reading `c.env.DB`, the
 * primary. After a request's writes, {@link rememberDirectoryWrites} hands the browser the
 * primary's bookmark.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { readDirectoryBookmark, setDirectoryBookmark } from '../http/cookies';
import { log } from '../observability/log';
import { confirmOnPrimary, isBookmark, primaryBookmark, replicaReads } from '../storage/directory';
import { findUserById, type User } from '../storage/users';
import { effectiveRoles } from './roles';

/** One session per request, so that its reads are sequentially consistent with each other. */
const perRequest = new WeakMap<Request, D1DatabaseSession>();

/** The request's replica reads (created on first use: a route that reads nothing pays nothing). */
export function directoryReads(c: Context<AppEnv>): D1DatabaseSession {
  let session = perRequest.get(c.req.raw);
  if (!session) {
    session = replicaReads(c.env.DB, readDirectoryBookmark(c));
    perRequest.set(c.req.raw, session);
  }
  return session;
}

/**
 * Sets the bookmark cookie to the primary's position, now that this request's writes are done.
 * A failure costs only freshness (the next reads start from any replica, and a refusal is
 * confirmed on the primary), so it is logged, not raised: the writes have succeeded.
 */
export async function rememberDirectoryWrites(c: Context<AppEnv>): Promise<void> {
  try {
    const bookmark = await primaryBookmark(c.env.DB);
    if (isBookmark(bookmark)) setDirectoryBookmark(c, bookmark);
  } catch (e) {
    log.warn('directory_bookmark_unread', { error: e instanceof Error ? e.message : String(e) });
  }
}

/**
 * The user's record for a view or a refresh's claims, from the request's replica; an answer that
 * would refuse (no such user, disabled) is read again on the primary, so a replica that has not
 * yet caught up never ends a session or refuses a page. The other way round (a replica still
 * showing an account enabled that was just disabled) is the sessions object's to refuse:
 * disabling ends the user's sessions there first.
 */
export function userFromReplica(c: Context<AppEnv>, userId: string): Promise<User | null> {
  return confirmOnPrimary((db) => findUserById(db, userId), directoryReads(c), c.env.DB, (user) => user === null || user.disabledAt !== null);
}

/**
 * The user whose claims a refresh puts into a new access token: {@link userFromReplica}, and
 * a replica's copy that would grant any role is confirmed on the primary too, so a role just
 * taken away (or an admin address just changed) is not granted again by a replica that has not
 * caught up. A copy granting no role (most users) is used as read: it can grant nothing.
 */
export function userForTokenClaims(c: Context<AppEnv>, userId: string): Promise<User | null> {
  const config = c.get('config');
  return confirmOnPrimary(
    (db) => findUserById(db, userId),
    directoryReads(c),
    c.env.DB,
    (user) => user === null || user.disabledAt !== null || effectiveRoles(user, config).length > 0,
  );
}
