/**
 * What the console's Health area reads from storage: a cheap probe of the KV namespace and of
 * the sessions' Durable Objects, and the last day's sign-ins counted per hour.
 */
import { guard } from './errors';
import { listActiveSessions } from './sessions';
import type { UserSessionsNamespace } from './user-sessions';

/**
 * The name probed in KV and the object probed among the sessions' Durable Objects: no user id
 * (those are `usr_…`) and no revocation key has it, so a probe reads nothing of anyone's. A
 * missing KV key and an object without sessions are the cheapest answers each store gives.
 */
export const PROBE_NAME = 'health-probe';

/** Reads one key that does not exist. */
export async function probeKv(kv: KVNamespace): Promise<void> {
  await kv.get(PROBE_NAME);
}

/** Lists the sessions of the probe's own object (none), through the same path as every session call. */
export async function probeSessionsObject(ns: UserSessionsNamespace, now: number): Promise<void> {
  await listActiveSessions({ ns, userId: PROBE_NAME }, now);
}

/** One hour of sign-ins: `hour` is the hour's start (Unix seconds). */
export interface SignInHour {
  hour: number;
  succeeded: number;
  refused: number;
  /** `login_failure_burst`: an account met a burst of failed sign-ins (the per-account back-off's alert). */
  bursts: number;
}

/** Events that are sign-ins: every way in records `login` (success or failure); a provider's refusals are `oauth_login`. */
const SIGN_IN_EVENTS = ['login', 'oauth_login'] as const;

/**
 * Sign-ins per hour in `[since, until)`, hours without any left out. Bounded: a range of `at`
 * read through the `auth_events_at` index (so no more than that window's events are visited),
 * and one row per hour in the answer (`until - since` is at most a day here: 25 rows).
 */
export async function signInsByHour(db: D1Database, since: number, until: number): Promise<SignInHour[]> {
  const { results } = await guard(() =>
    db
      .prepare(
        `SELECT (at / 3600) * 3600 AS hour,
           SUM(CASE WHEN event IN (?3, ?4) AND outcome = 'success' THEN 1 ELSE 0 END) AS succeeded,
           SUM(CASE WHEN event IN (?3, ?4) AND outcome <> 'success' THEN 1 ELSE 0 END) AS refused,
           SUM(CASE WHEN event = 'login_failure_burst' THEN 1 ELSE 0 END) AS bursts
         FROM auth_events INDEXED BY auth_events_at
         WHERE at >= ?1 AND at < ?2 AND event IN (?3, ?4, 'login_failure_burst')
         GROUP BY at / 3600 ORDER BY hour`,
      )
      .bind(since, until, ...SIGN_IN_EVENTS)
      .all<SignInHour>(),
  );
  return results.map((r) => ({ hour: r.hour, succeeded: r.succeeded, refused: r.refused, bursts: r.bursts }));
}
