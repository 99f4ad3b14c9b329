/**
 * The `auth_events` table: the stored audit trail. Events are recorded through
 * auth/events.ts, which also writes their log line and raises alerts.
 */
import { nowSeconds } from '../util/time';
import { guard } from './errors';
import type { Directory } from './directory';

export type EventOutcome = 'success' | 'failure' | 'security';

export interface AuthEvent {
  event: string;
  outcome: EventOutcome;
  userId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  detail?: Record<string, unknown>;
}

export interface StoredEvent {
  id: number;
  at: number;
  event: string;
  outcome: EventOutcome;
  userId: string | null;
  ip: string | null;
  userAgent: string | null;
  detail: Record<string, unknown> | null;
}

export async function insertEvent(db: D1Database, e: AuthEvent, now = nowSeconds()): Promise<void> {
  await guard(() => db
    .prepare('INSERT INTO auth_events (at, event, outcome, user_id, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .bind(now, e.event, e.outcome, e.userId ?? null, e.ip ?? null, e.userAgent?.slice(0, 512) ?? null, e.detail ? JSON.stringify(e.detail) : null)
    .run());
}

export async function listUserEvents(db: Directory, userId: string, limit: number): Promise<StoredEvent[]> {
  const { results } = await guard(() => db
    .prepare('SELECT * FROM auth_events WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?')
    .bind(userId, limit)
    .all<{ id: number; at: number; event: string; outcome: EventOutcome; user_id: string | null; ip: string | null; user_agent: string | null; detail: string | null }>());
  return results.map((r) => ({
    id: r.id,
    at: r.at,
    event: r.event,
    outcome: r.outcome,
    userId: r.user_id,
    ip: r.ip,
    userAgent: r.user_agent,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
  }));
}

/** Housekeeping: deletes up to `limit` events older than `before`. */
export async function deleteOldEvents(db: D1Database, before: number, limit: number): Promise<number> {
  const r = await guard(() => db
    .prepare('DELETE FROM auth_events WHERE id IN (SELECT id FROM auth_events WHERE at < ? LIMIT ?)')
    .bind(before, limit)
    .run());
  return r.meta.changes;
}
