/**
 * The audit trail (`auth_events`, written through auth/events.ts) as administrators search it:
 * filtered and paged, the names it holds, and who signed in lately (the console's Audit log and
 * Sessions areas). A module of its own so that none of it is in the start-up bundle, which
 * storage/events.ts is (every refusal records an event).
 */
import { guard } from './errors';
import type { Directory } from './directory';
import type { EventOutcome, StoredEvent } from './events';

interface EventRow {
  id: number;
  at: number;
  event: string;
  outcome: EventOutcome;
  user_id: string | null;
  ip: string | null;
  user_agent: string | null;
  detail: string | null;
}

function toStoredEvent(r: EventRow): StoredEvent {
  return {
    id: r.id,
    at: r.at,
    event: r.event,
    outcome: r.outcome,
    userId: r.user_id,
    ip: r.ip,
    userAgent: r.user_agent,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
  };
}

/** What the audit log is filtered by; every part optional. Times in Unix seconds, `to` exclusive. */
export interface EventFilter {
  userId?: string;
  event?: string;
  outcome?: EventOutcome;
  from?: number;
  to?: number;
}

/** Where a page of events starts, newest first: after this event (keyset), or `offset` rows in. */
export type EventCursor = { before: { at: number; id: number } } | { offset: number };

/**
 * Events matching `filter`, newest first, at most `limit` (the caller bounds it). Each filter is
 * a bound parameter; `user_id` and `event` each have an index with `at` (auth_events_user,
 * auth_events_event), and the time range alone reads auth_events_at.
 */
export async function searchEvents(db: Directory, filter: EventFilter, cursor: EventCursor, limit: number): Promise<StoredEvent[]> {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const add = (clause: string, value: string | number) => {
    where.push(clause);
    args.push(value);
  };
  if (filter.userId !== undefined) add('user_id = ?', filter.userId);
  if (filter.event !== undefined) add('event = ?', filter.event);
  if (filter.outcome !== undefined) add('outcome = ?', filter.outcome);
  if (filter.from !== undefined) add('at >= ?', filter.from);
  if (filter.to !== undefined) add('at < ?', filter.to);
  if ('before' in cursor) {
    where.push('(at < ? OR (at = ? AND id < ?))');
    args.push(cursor.before.at, cursor.before.at, cursor.before.id);
  }
  const offset = 'offset' in cursor ? cursor.offset : 0;
  const sql = `SELECT * FROM auth_events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`;
  const { results } = await guard(() => db.prepare(sql).bind(...args, limit, offset).all<EventRow>());
  return results.map(toStoredEvent);
}

/** Whether any stored event has this name (one look-up in auth_events_event). */
export async function isRecordedEvent(db: Directory, event: string): Promise<boolean> {
  return (await guard(() => db.prepare('SELECT 1 AS found FROM auth_events WHERE event = ? LIMIT 1').bind(event).first<{ found: number }>())) !== null;
}

/** A user who signed in since a time: when last, and who (their account as D1 holds it now). */
export interface RecentSignIn {
  userId: string;
  email: string;
  disabled: boolean;
  lastSignInAt: number;
}

/**
 * Users with a successful sign-in (`login` event) at or after `since`, the most recent first,
 * `limit` of them after `offset` (the caller bounds both): who may hold live sessions, which
 * live in each user's own object. Reads the range of auth_events_event; accounts since deleted
 * drop out with the join.
 */
export async function usersSignedInSince(db: Directory, since: number, page: { limit: number; offset: number }): Promise<RecentSignIn[]> {
  const { results } = await guard(() => db
    .prepare(
      `SELECT e.user_id, u.email, u.disabled_at, MAX(e.at) AS last_at FROM auth_events e JOIN users u ON u.id = e.user_id
       WHERE e.event = 'login' AND e.outcome = 'success' AND e.at >= ?1
       GROUP BY e.user_id ORDER BY last_at DESC, e.user_id LIMIT ?2 OFFSET ?3`,
    )
    .bind(since, page.limit, page.offset)
    .all<{ user_id: string; email: string; disabled_at: number | null; last_at: number }>());
  return results.map((r) => ({ userId: r.user_id, email: r.email, disabled: r.disabled_at !== null, lastSignInAt: r.last_at }));
}

