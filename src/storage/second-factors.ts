/**
 * Second factors in D1: the authenticator app (`totp_factors`), recovery codes
 * (`recovery_codes`) and the per-account counter of wrong codes (`second_factor_failures`).
 * Every "use once" rule is one conditional statement, so two concurrent requests can never both
 * spend the same code.
 */
import { guard } from './errors';
import type { Directory } from './directory';

export interface TotpFactor {
  userId: string;
  secretEncrypted: string;
  createdAt: number;
  confirmedAt: number | null;
  lastUsedStep: number | null;
}

type TotpRow = { user_id: string; secret_encrypted: string; created_at: number; confirmed_at: number | null; last_used_step: number | null };

const toFactor = (r: TotpRow): TotpFactor => ({
  userId: r.user_id,
  secretEncrypted: r.secret_encrypted,
  createdAt: r.created_at,
  confirmedAt: r.confirmed_at,
  lastUsedStep: r.last_used_step,
});

export async function findTotpFactor(db: Directory, userId: string): Promise<TotpFactor | null> {
  const row = await guard(() => db.prepare('SELECT * FROM totp_factors WHERE user_id = ?').bind(userId).first<TotpRow>());
  return row ? toFactor(row) : null;
}

/**
 * Stores a new, unconfirmed secret where the user has none, or in place of exactly the
 * unconfirmed one the caller saw (`replacing`, sealed as stored): a compare-and-swap, so a
 * secret another request has just stored, or a confirmed one, is left alone. False if nothing
 * was stored.
 */
export async function putPendingTotp(db: D1Database, userId: string, secretEncrypted: string, now: number, replacing: string | null): Promise<boolean> {
  const r = await guard(() => db
    .prepare(
      `INSERT INTO totp_factors (user_id, secret_encrypted, created_at) VALUES (?1, ?2, ?3)
       ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = ?2, created_at = ?3, last_used_step = NULL
       WHERE confirmed_at IS NULL AND secret_encrypted = ?4`,
    )
    .bind(userId, secretEncrypted, now, replacing)
    .run());
  return r.meta.changes === 1;
}

/**
 * Spends a code's time step: true only if `step` is later than every step used before (so a code,
 * and any older one, works once). With `confirm`, an unconfirmed factor is confirmed in the same
 * statement; without, only a confirmed one counts.
 */
export async function useTotpStep(db: D1Database, userId: string, step: number, now: number, confirm: boolean): Promise<boolean> {
  const r = await guard(() => db
    .prepare(
      `UPDATE totp_factors SET last_used_step = ?1, confirmed_at = COALESCE(confirmed_at, ?2)
       WHERE user_id = ?3 AND (last_used_step IS NULL OR last_used_step < ?1)
         AND ${confirm ? 'confirmed_at IS NULL' : 'confirmed_at IS NOT NULL'}`,
    )
    .bind(step, now, userId)
    .run());
  return r.meta.changes === 1;
}

export async function deleteTotpFactor(db: D1Database, userId: string): Promise<boolean> {
  const r = await guard(() => db.prepare('DELETE FROM totp_factors WHERE user_id = ?').bind(userId).run());
  return r.meta.changes === 1;
}

/** Replaces every recovery code of the user with these hashes, in one transaction; false (none stored) when the user has no second factor. */
export async function replaceRecoveryCodes(db: D1Database, userId: string, hashes: string[], now: number): Promise<boolean> {
  // Only beside a second factor, checked in the same transaction: a claim that removed the
  // account's factors just before must not be followed by codes its old holder was shown.
  const hasFactor = `(EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?1 AND confirmed_at IS NOT NULL) OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?1))`;
  const [, ...inserted] = await guard(() => db.batch([
    db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').bind(userId),
    ...hashes.map((h) => db.prepare(`INSERT INTO recovery_codes (user_id, code_hash, created_at) SELECT ?1, ?2, ?3 WHERE ${hasFactor}`).bind(userId, h, now)),
  ]));
  return inserted.every((r) => r.meta.changes === 1);
}

/** Marks one unused code used; true if this call spent it. */
export async function useRecoveryCode(db: D1Database, userId: string, hash: string, now: number): Promise<boolean> {
  const r = await guard(() => db
    .prepare('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL')
    .bind(now, userId, hash)
    .run());
  return r.meta.changes === 1;
}

export async function countUnusedRecoveryCodes(db: Directory, userId: string): Promise<number> {
  const row = await guard(() => db.prepare('SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL').bind(userId).first<{ n: number }>());
  return row?.n ?? 0;
}

/**
 * Deletes the user's recovery codes if no second factor is left for them to stand in for (no
 * passkey, no confirmed authenticator app): one statement, so a factor added concurrently keeps
 * them. Run in the same batch as the removal of a factor.
 */
export function deleteOrphanRecoveryCodes(db: D1Database, userId: string): D1PreparedStatement {
  return db
    .prepare(
      `DELETE FROM recovery_codes WHERE user_id = ?1
         AND NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?1)
         AND NOT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?1 AND confirmed_at IS NOT NULL)`,
    )
    .bind(userId);
}

/**
 * Removes the authenticator app (and, with `passkeys`, every passkey: an admin's reset), then the
 * recovery codes if no factor is left, in one transaction. Returns what was removed.
 */
export async function deleteSecondFactors(
  db: D1Database,
  userId: string,
  opts: { passkeys: boolean } = { passkeys: false },
): Promise<{ totp: boolean; recoveryCodes: number; passkeys: number }> {
  const passkeys = opts.passkeys ? [db.prepare('DELETE FROM passkeys WHERE user_id = ?').bind(userId)] : [];
  const results = await guard(() => db.batch([
    db.prepare('DELETE FROM totp_factors WHERE user_id = ?').bind(userId),
    ...passkeys,
    deleteOrphanRecoveryCodes(db, userId),
    db.prepare('DELETE FROM second_factor_failures WHERE user_id = ?').bind(userId),
  ]));
  const changes = (i: number) => results[i]?.meta.changes ?? 0;
  return { totp: changes(0) > 0, passkeys: opts.passkeys ? changes(1) : 0, recoveryCodes: changes(passkeys.length + 1) };
}

/**
 * Reserves one second-factor attempt: counts it (a new window if the last one ended) only while
 * fewer than `limit` attempts are counted in the window. One conditional upsert, so parallel
 * guesses cannot share a free slot. Returns the count including this attempt, or null if refused.
 */
export async function reserveSecondFactorAttempt(db: D1Database, userId: string, limit: number, windowSeconds: number, now: number): Promise<number | null> {
  const row = await guard(() => db
    .prepare(
      `INSERT INTO second_factor_failures (user_id, count, window_start) VALUES (?1, 1, ?2)
       ON CONFLICT (user_id) DO UPDATE SET
         count = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE count + 1 END,
         window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END
       WHERE window_start <= ?2 - ?3 OR count < ?4
       RETURNING count`,
    )
    .bind(userId, now, windowSeconds, limit)
    .first<{ count: number }>());
  return row ? row.count : null;
}

/** When the user's current window of counted attempts started, if any. */
export async function secondFactorWindowStart(db: D1Database, userId: string): Promise<number | null> {
  const row = await guard(() => db.prepare('SELECT window_start FROM second_factor_failures WHERE user_id = ?').bind(userId).first<{ window_start: number }>());
  return row?.window_start ?? null;
}

export async function clearSecondFactorAttempts(db: D1Database, userId: string): Promise<void> {
  await guard(() => db.prepare('DELETE FROM second_factor_failures WHERE user_id = ?').bind(userId).run());
}

/** Housekeeping: wrong-code counters whose window began before `before` (ended); returns how many. */
export async function deleteStaleSecondFactorFailures(db: D1Database, before: number): Promise<number> {
  const r = await guard(() => db.prepare('DELETE FROM second_factor_failures WHERE window_start < ?').bind(before).run());
  return r.meta.changes;
}
