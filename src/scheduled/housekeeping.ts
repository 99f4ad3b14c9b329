/**
 * The cron job (`[triggers] crons` in wrangler.toml): deletes sessions that ended more than a
 * day ago (kept that long for the admin view and reuse forensics), audit rows older than
 * `AUDIT_RETENTION_DAYS`, sign-in failure counters whose window has ended, and mailed-link
 * tokens (verification, password reset...) that have expired.
 *
 * Each table is cleaned in batches of {@link BATCH_SIZE} rows, at most {@link MAX_BATCHES} per
 * run, so one run never holds D1 long; whatever is left waits for the next run.
 */
import { FAILURE_WINDOW_SECONDS } from '../auth/login-throttle';
import type { Config } from '../config/schema';
import { log } from '../observability/log';
import { deleteExpiredAccountTokens } from '../storage/account-tokens';
import { deleteOldEvents } from '../storage/events';
import { deleteStaleFailureCounters } from '../storage/login-failures';
import { deleteEndedSessions } from '../storage/sessions';
import { nowSeconds } from '../util/time';

export const BATCH_SIZE = 500;
export const MAX_BATCHES = 20;
export const ENDED_SESSION_GRACE_SECONDS = 86_400;

/** Rows deleted per table (as D1 counts them: a session's cascaded rotated tokens included). */
export interface HousekeepingReport {
  sessions: number;
  events: number;
  loginFailures: number;
  /** Expired account tokens (mailed links). */
  accountTokens: number;
  /** True if a table still had rows to delete when its batch budget ran out. */
  incomplete: boolean;
}

async function inBatches(remove: (limit: number) => Promise<number>, batchSize: number, maxBatches: number) {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const n = await remove(batchSize);
    total += n;
    if (n < batchSize) return { total, incomplete: false };
  }
  return { total, incomplete: true };
}

export async function runHousekeeping(
  db: D1Database,
  config: Pick<Config, 'AUDIT_RETENTION_DAYS'>,
  now = nowSeconds(),
  limits = { batchSize: BATCH_SIZE, maxBatches: MAX_BATCHES },
): Promise<HousekeepingReport> {
  const sessions = await inBatches((n) => deleteEndedSessions(db, now - ENDED_SESSION_GRACE_SECONDS, n), limits.batchSize, limits.maxBatches);
  const events = await inBatches((n) => deleteOldEvents(db, now - config.AUDIT_RETENTION_DAYS * 86_400, n), limits.batchSize, limits.maxBatches);
  const failures = await inBatches((n) => deleteStaleFailureCounters(db, now - FAILURE_WINDOW_SECONDS, n), limits.batchSize, limits.maxBatches);
  // One statement, not batches: the table stays small (one live token per user and purpose,
  // and every new token also clears the expired ones), so this never holds D1 for long.
  const accountTokens = await deleteExpiredAccountTokens(db, now);
  const report = {
    sessions: sessions.total,
    events: events.total,
    loginFailures: failures.total,
    accountTokens,
    incomplete: sessions.incomplete || events.incomplete || failures.incomplete,
  };
  log.info('housekeeping', {
    deleted_sessions: report.sessions,
    deleted_events: report.events,
    deleted_login_failures: report.loginFailures,
    deleted_account_tokens: report.accountTokens,
    incomplete: report.incomplete,
  });
  return report;
}
