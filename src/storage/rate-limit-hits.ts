/**
 * Requests the per-IP limiter refused, per hour and per action (`rate_limit_hits`): added to in
 * one batch by the per-isolate accumulator (observability/rate-limit-hits.ts), read by the
 * console's Health area, pruned by the cron job.
 */
import { guard } from './errors';

/** Refusals of one action within one hour (`hour`: the hour's start, Unix seconds). */
export interface RateLimitHitCount {
  hour: number;
  action: string;
  hits: number;
}

/** Adds each count to its row (created at the first), all in one D1 batch: one write however many keys. */
export async function addRateLimitHits(db: D1Database, counts: RateLimitHitCount[]): Promise<void> {
  if (counts.length === 0) return;
  await guard(() =>
    db.batch(
      counts.map((n) =>
        db
          .prepare('INSERT INTO rate_limit_hits (hour, action, hits) VALUES (?, ?, ?) ON CONFLICT (hour, action) DO UPDATE SET hits = hits + excluded.hits')
          .bind(n.hour, n.action, n.hits),
      ),
    ),
  );
}

/** Refusals per action in the hours from `since` (an hour's start) on, most refused first. */
export async function rateLimitHitsSince(db: D1Database, since: number): Promise<{ action: string; hits: number }[]> {
  const { results } = await guard(() =>
    db.prepare('SELECT action, SUM(hits) AS hits FROM rate_limit_hits WHERE hour >= ? GROUP BY action ORDER BY hits DESC, action').bind(since).all<{ action: string; hits: number }>(),
  );
  return results.map((r) => ({ action: r.action, hits: r.hits }));
}

/**
 * Deletes the hours that started before `before`. One statement: the table holds at most one row
 * per action and hour (a few hundred rows a day at the very most).
 */
export async function deleteOldRateLimitHits(db: D1Database, before: number): Promise<number> {
  const r = await guard(() => db.prepare('DELETE FROM rate_limit_hits WHERE hour < ?').bind(before).run());
  return r.meta.changes;
}
