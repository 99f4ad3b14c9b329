/**
 * The `login_failures` table: one failure counter per account (normalised email) and window.
 * The back-off policy (auth/login-throttle.ts) passes its schedule in; the reservation is one
 * statement here because only a single conditional upsert makes it atomic.
 */
import { guard } from './errors';
import { normaliseEmail } from './users';

export interface FailureCounter {
  count: number;
  windowStart: number;
  lastFailureAt: number;
}

/** The back-off schedule, as auth/login-throttle.ts `waitSeconds` defines it. */
export interface FailureSchedule {
  windowSeconds: number;
  limit: number;
  backoffAfter: number;
  backoffMax: number;
}

type CounterRow = { count: number; window_start: number; last_failure_at: number };

const toCounter = (row: CounterRow | null): FailureCounter | null =>
  row ? { count: row.count, windowStart: row.window_start, lastFailureAt: row.last_failure_at } : null;

export async function readFailureCounter(db: D1Database, email: string): Promise<FailureCounter | null> {
  const row = await guard(() =>
    db.prepare('SELECT count, window_start, last_failure_at FROM login_failures WHERE email = ?').bind(normaliseEmail(email)).first<CounterRow>(),
  );
  return toCounter(row);
}

/**
 * Counts one failure (starting a new window if the last one has ended) only if the schedule
 * allows an attempt at `now`. The upsert's WHERE refuses the update, and RETURNING then yields
 * no row, when the account is backing off. Returns the counter including this attempt, or null.
 */
export async function reserveFailure(db: D1Database, email: string, schedule: FailureSchedule, now: number): Promise<FailureCounter | null> {
  const row = await guard(() =>
    db
      .prepare(
        `INSERT INTO login_failures (email, count, window_start, last_failure_at) VALUES (?1, 1, ?2, ?2)
       ON CONFLICT (email) DO UPDATE SET
         count = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE count + 1 END,
         window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END,
         last_failure_at = ?2
       WHERE window_start <= ?2 - ?3
          OR (count < ?4 AND (count < ?5
              OR last_failure_at + (CASE WHEN count - ?5 >= 30 THEN ?6 ELSE MIN(1 << (count - ?5), ?6) END) <= ?2))
       RETURNING count, window_start, last_failure_at`,
      )
      .bind(normaliseEmail(email), now, schedule.windowSeconds, schedule.limit, schedule.backoffAfter, schedule.backoffMax)
      .first<CounterRow>(),
  );
  return toCounter(row);
}

export async function clearFailureCounter(db: D1Database, email: string): Promise<void> {
  await guard(() => db.prepare('DELETE FROM login_failures WHERE email = ?').bind(normaliseEmail(email)).run());
}

/** Housekeeping: deletes up to `limit` counters whose window started at or before `windowStartedBy`. */
export async function deleteStaleFailureCounters(db: D1Database, windowStartedBy: number, limit: number): Promise<number> {
  const r = await guard(() =>
    db
      .prepare('DELETE FROM login_failures WHERE email IN (SELECT email FROM login_failures WHERE window_start <= ? LIMIT ?)')
      .bind(windowStartedBy, limit)
      .run(),
  );
  return r.meta.changes;
}
