/**
 * Reads of the directory (D1: users, identities, factors, passkeys, audit) that may be served by
 * a read replica near the user, through D1's Sessions API. Three classes, one rule each:
 *
 * - **Replica reads** ({@link replicaReads}): views that tolerate a replica's lag. They start
 *   `first-unconstrained` (any replica), or from a bookmark the browser carries after its own
 *   writes (so it reads back what it wrote). One session per request: its reads are
 *   sequentially consistent with each other.
 * - **Primary reads**: security decisions and reads right after a write in the same request
 *   (sign-in's account re-check, mailbox proof, the back-off counters, single-use tokens, the
 *   user read before a change) use the `D1Database` binding itself, which without a session is
 *   always the primary. A refusal a replica read would lead to (an account gone or disabled) is
 *   confirmed there too ({@link confirmOnPrimary}).
 * - **Bookmarks** ({@link primaryBookmark}): after a request's writes, the primary's position,
 *   for the browser to hand back.
 *
 * Without read replication enabled on the database every session is served by the primary:
 * nothing here changes behaviour, only where reads may go.
 */

/** What a read takes: the binding (the primary) or a session of it (same `prepare`/`batch`). */
export type Directory = D1Database | D1DatabaseSession;

/**
 * A bookmark as D1 hands them out (hex fields and dashes); anything else sent back is ignored,
 * since the runtime refuses a malformed one.
 */
const BOOKMARK = /^[0-9a-f]{1,40}(?:-[0-9a-f]{1,40}){0,7}$/i;

export function isBookmark(text: string | undefined | null): text is string {
  return typeof text === 'string' && text.length <= 200 && BOOKMARK.test(text);
}

/**
 * A session for reads that tolerate a replica's lag: from `bookmark` when the caller has one
 * (the replica serving it is at least as new as that point), else any replica.
 */
export function replicaReads(db: D1Database, bookmark?: string | null): D1DatabaseSession {
  return db.withSession(isBookmark(bookmark) ? bookmark : 'first-unconstrained');
}

/**
 * The primary's current position, read after a request's writes: a later request that starts
 * its replica reads from it sees them. One small query on the primary.
 */
export async function primaryBookmark(db: D1Database): Promise<string | null> {
  const session = db.withSession('first-primary');
  await session.prepare('SELECT 1').first();
  return session.getBookmark();
}

/**
 * A replica read whose answer, when it would refuse (`refuses`), is read again on the primary:
 * a replica that has not yet seen a new account, or an account enabled again, must not end
 * a session or refuse a page.
 */
export async function confirmOnPrimary<T>(read: (db: Directory) => Promise<T>, replica: Directory, primary: D1Database, refuses: (value: T) => boolean): Promise<T> {
  const first = await read(replica);
  return refuses(first) ? read(primary) : first;
}
