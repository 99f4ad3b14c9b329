/**
 * The cron job (`[triggers] crons` in wrangler.toml): directory work only. Sessions are each
 * user's object's, which cleans up after itself (storage/user-sessions.ts, alarms); here go the
 * rows earlier versions kept in D1's session table once they ended more than a day ago (kept
 * that long for reuse forensics), audit rows older than
 * `AUDIT_RETENTION_DAYS`, sign-in failure counters whose window has ended, mailed-link
 * tokens (verification, password reset...) that have expired, and the second factors' leftovers
 * (expired pending sign-ins, ended wrong-code counters, expired WebAuthn challenges), and the
 * per-IP limiter's hourly refusal counts older than {@link RATE_LIMIT_HITS_RETENTION_SECONDS}.
 *
 * Each table is cleaned in batches of {@link BATCH_SIZE} rows, at most {@link MAX_BATCHES} per
 * run, so one run never holds D1 long; whatever is left waits for the next run.
 */
import { FAILURE_WINDOW_SECONDS } from '../auth/login-throttle';
import { ATTEMPT_WINDOW_SECONDS } from '../auth/second-factor-status';
import type { Config } from '../config/schema';
import { log } from '../observability/log';
import { deleteExpiredAccountTokens } from '../storage/account-tokens';
import { deleteOldEvents } from '../storage/events';
import { deleteStaleFailureCounters } from '../storage/login-failures';
import { deleteExpiredPending } from '../storage/mfa-pending';
import { deleteOldRateLimitHits } from '../storage/rate-limit-hits';
import { deleteStaleSecondFactorFailures } from '../storage/second-factors';
import { deleteEndedLegacySessions } from '../storage/sessions';
import { deleteExpiredChallenges } from '../storage/webauthn-challenges';
import { nowSeconds } from '../util/time';

export const BATCH_SIZE = 500;
export const MAX_BATCHES = 20;
export const ENDED_SESSION_GRACE_SECONDS = 86_400;
/** How long the per-IP limiter's refusal counts are kept: the Health page shows one day of them, a week leaves room to look back. */
export const RATE_LIMIT_HITS_RETENTION_SECONDS = 7 * 86_400;

/** Rows deleted per table (as D1 counts them: a session's cascaded rotated tokens included). */
export interface HousekeepingReport {
  /**
   * Rows of the session table earlier versions kept in D1, once expired or ended (each user's
   * object cleans up its own sessions with its alarm).
   */
  sessions: number;
  events: number;
  loginFailures: number;
  /** Expired account tokens (mailed links). */
  accountTokens: number;
  /** Expired pending second-factor sign-ins (`mfa_pending`). */
  mfaPending: number;
  /** Wrong-code counters whose window has ended (`second_factor_failures`). */
  secondFactorFailures: number;
  /** Expired, unanswered WebAuthn challenges. */
  webauthnChallenges: number;
  /** Hours of per-IP limiter refusal counts older than the retention (`rate_limit_hits`). */
  rateLimitHits: number;
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
  const sessions = await inBatches((n) => deleteEndedLegacySessions(db, now - ENDED_SESSION_GRACE_SECONDS, n), limits.batchSize, limits.maxBatches);
  const events = await inBatches((n) => deleteOldEvents(db, now - config.AUDIT_RETENTION_DAYS * 86_400, n), limits.batchSize, limits.maxBatches);
  const failures = await inBatches((n) => deleteStaleFailureCounters(db, now - FAILURE_WINDOW_SECONDS, n), limits.batchSize, limits.maxBatches);
  // One statement, not batches: the table stays small (one live token per user and purpose,
  // and every new token also clears the expired ones), so this never holds D1 for long.
  const accountTokens = await deleteExpiredAccountTokens(db, now);
  // The same for these: short-lived rows, also trimmed whenever new ones are written.
  const mfaPending = await deleteExpiredPending(db, now);
  const secondFactorFailures = await deleteStaleSecondFactorFailures(db, now - ATTEMPT_WINDOW_SECONDS);
  const webauthnChallenges = await deleteExpiredChallenges(db, now);
  // At most one row per action and hour: a week of them is a few hundred rows.
  const rateLimitHits = await deleteOldRateLimitHits(db, now - RATE_LIMIT_HITS_RETENTION_SECONDS);
  const report = {
    sessions: sessions.total,
    events: events.total,
    loginFailures: failures.total,
    accountTokens,
    mfaPending,
    secondFactorFailures,
    webauthnChallenges,
    rateLimitHits,
    incomplete: sessions.incomplete || events.incomplete || failures.incomplete,
  };
  log.info('housekeeping', {
    deleted_sessions: report.sessions,
    deleted_events: report.events,
    deleted_login_failures: report.loginFailures,
    deleted_account_tokens: report.accountTokens,
    deleted_mfa_pending: report.mfaPending,
    deleted_second_factor_failures: report.secondFactorFailures,
    deleted_webauthn_challenges: report.webauthnChallenges,
    deleted_rate_limit_hits: report.rateLimitHits,
    incomplete: report.incomplete,
  });
  return report;
}
