/**
 * Logout notices to origins (README "Revocation"): what a user's sessions object owes the
 * routes' `logout_notify` targets when a session ends. The object writes them
 * (`origin_logout_notices`, storage/user-sessions.ts) in the transaction that ends the session;
 * its alarm hands them to the `LOGOUT_NOTICES` queue here, and forgets them once the queue has
 * them. The queue's consumer (auth/logout-notices.ts) signs, sends and retries. Loaded by the
 * alarm only when something is due, so it costs no start-up.
 */
import { log } from '../observability/log';

/**
 * Where a session's end is told (config/routes-schema.ts `logoutNoticeTargets` computes these
 * from ROUTES, with its own declaration of this shape: storage/ may not import config/).
 */
export interface LogoutNoticeTarget {
  /** An https URL, or `service:BINDING[/path]`; also the logout token's `aud`. */
  target: string;
  /** The route (host and path), for the audit. */
  route: string;
}

/** One queue message: one notice to one target about one ended session. */
export interface LogoutNotice extends LogoutNoticeTarget {
  /** The user (`sub`) and the ended session (`sid`). */
  sub: string;
  sid: string;
}

/** The producer binding's type (`LOGOUT_NOTICES` in wrangler.toml). */
export type LogoutNoticeQueue = Queue<LogoutNotice>;

/** At most this many notices go to the queue per alarm (one `sendBatch`, under its 100 messages); the rest at the next, set at once. */
export const NOTICE_HANDOFF_BATCH = 50;

/** Seconds before a hand-off the queue refused is tried again, by how many it has failed; the last repeats. */
export const NOTICE_HANDOFF_RETRY_S = [10, 60, 300, 1800] as const;

interface NoticeRow extends LogoutNotice {
  id: number;
  handoffs: number;
}

/**
 * Hands the due notices to the queue and forgets them. If the queue refuses (or is missing),
 * they stay, tried again after a growing delay; nothing is lost. A hand-off that reached the
 * queue just before the object stopped may be made again: notices are at least once, and an
 * origin treats a second one for a `sid` it already dropped as the no-op it is.
 */
export async function handOffDueNotices(storage: DurableObjectStorage, queue: LogoutNoticeQueue | undefined, now: number): Promise<void> {
  const sql = storage.sql;
  const due = sql
    .exec<NoticeRow & Record<string, SqlStorageValue>>('SELECT id, user_id AS sub, session_id AS sid, target, route, handoffs FROM origin_logout_notices WHERE next_at <= ? ORDER BY next_at, id LIMIT ?', now, NOTICE_HANDOFF_BATCH)
    .toArray();
  if (due.length === 0) return;
  try {
    if (!queue) throw new Error('no LOGOUT_NOTICES queue binding');
    await queue.sendBatch(due.map(({ sub, sid, target, route }) => ({ body: { sub, sid, target, route }, contentType: 'json' as const })));
  } catch (e) {
    storage.transactionSync(() => {
      for (const row of due) {
        const wait = NOTICE_HANDOFF_RETRY_S[Math.min(row.handoffs, NOTICE_HANDOFF_RETRY_S.length - 1)]!;
        sql.exec('UPDATE origin_logout_notices SET handoffs = handoffs + 1, next_at = ? WHERE id = ?', now + wait, row.id);
      }
    });
    log.error('logout_notices_not_queued', { count: due.length, error: e instanceof Error ? e.message : String(e) });
    return;
  }
  storage.transactionSync(() => {
    for (const row of due) sql.exec('DELETE FROM origin_logout_notices WHERE id = ?', row.id);
  });
  log.info('logout_notices_queued', { count: due.length });
}
