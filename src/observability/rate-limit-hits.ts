/**
 * Counts the requests the per-IP limiter refuses (429), per action and hour, into D1
 * (`rate_limit_hits`, storage/rate-limit-hits.ts) for the console's Health area, without turning
 * a flood into a write per request: a client being refused must not be able to load the one D1
 * primary. Each isolate keeps its refusals in a map (one entry per hour and action) and writes
 * them in one batch, at most once every {@link FLUSH_SPACING_MS}:
 *
 * - the first refusal while nothing is pending writes at once, after the response
 *   (`waitUntil`), unless a write started less than the spacing ago: then it waits out the rest
 *   (never more than the spacing, even when the clock has stepped back since);
 * - refusals arriving while that write is pending only add to the map: the pending write takes
 *   them all, however many;
 * - a write that fails is logged (`rate_limit_count_failed`) and its counts go back into the map
 *   for the next write (only this hour's and the last one's, so the map stays at most actions × 2
 *   entries while D1 is down). The 429 is answered the same either way.
 *
 * Hand-written because nothing off the shelf coalesces writes across the requests of one
 * Workers isolate (a Queue or a Durable Object would move each write elsewhere, not remove it).
 * What it can lose: counts held by an isolate that is evicted before its write runs, or whose
 * write failed with no later refusal to retry it. The stored numbers mean "at least this many".
 *
 * @example
 * countRateLimitHit(c, 'login') // then throw the 429 as before
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { addRateLimitHits, type RateLimitHitCount } from '../storage/rate-limit-hits';
import { log } from './log';

/** The least time between two writes of one isolate: about one write a second, whatever the flood. */
export const FLUSH_SPACING_MS = 1000;

const HOUR = 3600;
const hourOf = (ms: number) => Math.floor(ms / 1000 / HOUR) * HOUR;

/** Unwritten refusals by `hour:action`. */
const pending = new Map<string, RateLimitHitCount>();
/** A request's `waitUntil` holds a write that has not yet taken the pending counts. */
let scheduled = false;
let lastWriteAt = Number.NEGATIVE_INFINITY;
let noContextReported = false;

function add(count: RateLimitHitCount): void {
  const key = `${count.hour}:${count.action}`;
  const held = pending.get(key);
  if (held) held.hits += count.hits;
  else pending.set(key, { ...count });
}

async function write(db: D1Database): Promise<void> {
  scheduled = false;
  lastWriteAt = Date.now();
  const counts = [...pending.values()];
  pending.clear();
  try {
    await addRateLimitHits(db, counts);
  } catch (e) {
    const keepFrom = hourOf(Date.now()) - HOUR;
    let dropped = 0;
    for (const n of counts) {
      if (n.hour >= keepFrom) add(n);
      else dropped += n.hits;
    }
    log.error('rate_limit_count_failed', { error: e instanceof Error ? e.message : String(e), hits: counts.reduce((s, n) => s + n.hits, 0), dropped });
  }
}

/**
 * Counts one refusal of `action` for the client of `c`. Never throws and never waits: the write
 * runs after the response, through the request's `waitUntil`.
 */
export function countRateLimitHit(c: Context<AppEnv>, action: string): void {
  add({ hour: hourOf(Date.now()), action, hits: 1 });
  if (scheduled) return;
  let ctx: Context<AppEnv>['executionCtx'];
  try {
    ctx = c.executionCtx;
  } catch {
    // Only outside a request (never in the Worker): the count waits for the next refusal that has one.
    if (!noContextReported) {
      noContextReported = true;
      log.warn('rate_limit_count_failed', { error: 'no execution context to write the count in' });
    }
    return;
  }
  scheduled = true;
  const db = c.env.DB;
  // At most the spacing, whatever the clock did since the last write: a wait as long as a clock
  // stepping back would outlive the request's waitUntil, and the write, never run, would leave
  // `scheduled` set, so nothing more of this isolate would be written.
  const wait = Math.min(FLUSH_SPACING_MS, lastWriteAt + FLUSH_SPACING_MS - Date.now());
  ctx.waitUntil(wait > 0 ? new Promise<void>((resolve) => setTimeout(resolve, wait)).then(() => write(db)) : write(db));
}
