/**
 * The logout tokens a user's sessions object owes to clients (back-channel logout; the outbox
 * itself, `oauth_logout_outbox`, is written by storage/user-sessions.ts in the transaction that
 * ends a session): what is due, when to retry, when to give up. Loaded by the object's alarm
 * only when something is due, so it costs no start-up. The try itself (signing, sending,
 * auditing) is the `deliver` the Worker's object class supplies.
 */
import { log } from '../observability/log';

/** A logout token owed to a client: its session ended while the client held a grant on it. */
export interface LogoutDelivery {
  userId: string;
  clientId: string;
  sessionId: string;
  /** This try, from 1. */
  attempt: number;
  /** Seconds until the next try if this one fails; null: this is the last. */
  retryInS: number | null;
}

/**
 * What became of one try: `delivered` (the client said 200 or 204), `failed` (anything else:
 * tried again after the next backoff, or given up after the last), `dropped` (nothing to send
 * any more: the client is gone, disabled, or asks for no back-channel logout).
 */
export type LogoutOutcome = 'delivered' | 'failed' | 'dropped';

/**
 * Seconds between a failed try and the next: five retries over about 7 h 12 min, then the
 * delivery is given up. The first try is due at once.
 */
export const LOGOUT_RETRY_S = [30, 120, 600, 3600, 21_600] as const;

/** At most this many deliveries are tried at once per alarm; the rest are due at the next, set at once. */
export const LOGOUT_BATCH = 20;

interface OutboxRow {
  id: number;
  user_id: string;
  client_id: string;
  session_id: string;
  attempts: number;
}

/**
 * Tries the logout tokens due (at most {@link LOGOUT_BATCH}, at once). Each try is counted and
 * its retry scheduled before it is sent: an object that dies meanwhile tries again then, and a
 * second alarm never sends it twice at once. Delivered, dropped, or failed for the last time:
 * the row goes.
 */
export async function deliverDueLogouts(storage: DurableObjectStorage, deliver: (item: LogoutDelivery) => Promise<LogoutOutcome>, now: number): Promise<void> {
  const sql = storage.sql;
  const due = sql
    .exec<OutboxRow & Record<string, SqlStorageValue>>('SELECT id, user_id, client_id, session_id, attempts FROM oauth_logout_outbox WHERE next_at <= ? ORDER BY next_at, id LIMIT ?', now, LOGOUT_BATCH)
    .toArray();
  await Promise.all(
    due.map(async (row) => {
      if (row.attempts > LOGOUT_RETRY_S.length) {
        // Its last try was under way when the object stopped: given up.
        sql.exec('DELETE FROM oauth_logout_outbox WHERE id = ?', row.id);
        log.warn('backchannel_logout_abandoned', { client_id: row.client_id, sid: row.session_id, attempt: row.attempts });
        return;
      }
      const retryInS = LOGOUT_RETRY_S[row.attempts] ?? null;
      // The last try holds the row for a minute, past its 5-second deadline.
      sql.exec('UPDATE oauth_logout_outbox SET attempts = attempts + 1, next_at = ? WHERE id = ?', now + (retryInS ?? 60), row.id);
      let outcome: LogoutOutcome;
      try {
        outcome = await deliver({ userId: row.user_id, clientId: row.client_id, sessionId: row.session_id, attempt: row.attempts + 1, retryInS });
      } catch (e) {
        log.error('backchannel_logout_error', { client_id: row.client_id, sid: row.session_id, error: e instanceof Error ? e.message : String(e) });
        outcome = 'failed';
      }
      if (outcome !== 'failed' || retryInS === null) sql.exec('DELETE FROM oauth_logout_outbox WHERE id = ?', row.id);
    }),
  );
}
