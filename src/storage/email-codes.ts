/**
 * One-time sign-in codes sent by mail (D1 table `email_codes`, migration 0004): one live code
 * per address, stored as a hash, with a guess counter.
 */
import { guard } from './errors';

/**
 * Stores a new code for `email`, replacing an older one (its guesses reset), unless the older
 * one is younger than `minIntervalSeconds`: then nothing changes and this returns false (a
 * flood of requests cannot keep resetting the guess counter or fill an inbox). Codes that
 * expired over an hour ago are swept on the way.
 */
export async function storeEmailCode(
  db: D1Database,
  input: { email: string; codeHash: string; now: number; ttlSeconds: number; minIntervalSeconds: number },
): Promise<boolean> {
  const [, stored] = await guard(() =>
    db.batch([
      db.prepare('DELETE FROM email_codes WHERE expires_at < ?').bind(input.now - 3600),
      db
        .prepare(
          `INSERT INTO email_codes (email, code_hash, attempts, created_at, expires_at) VALUES (?, ?, 0, ?, ?)
           ON CONFLICT (email) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0,
             created_at = excluded.created_at, expires_at = excluded.expires_at
           WHERE email_codes.created_at <= ?`,
        )
        .bind(input.email, input.codeHash, input.now, input.now + input.ttlSeconds, input.now - input.minIntervalSeconds),
    ]),
  );
  return stored!.meta.changes === 1;
}

/** Deletes the address's code if it is still this one (a code that could not be mailed). */
export async function deleteEmailCode(db: D1Database, email: string, codeHash: string): Promise<void> {
  await guard(() => db.prepare('DELETE FROM email_codes WHERE email = ? AND code_hash = ?').bind(email, codeHash).run());
}

/**
 * One guess at the address's code: counts it (only while the code is live and has guesses
 * left), then uses the code up if the hash matches. Both are single statements, so concurrent
 * guesses can neither exceed the limit nor use one code twice. True only for the right code.
 */
export async function redeemEmailCode(db: D1Database, input: { email: string; codeHash: string; now: number; maxAttempts: number }): Promise<boolean> {
  const counted = await guard(() =>
    db
      .prepare('UPDATE email_codes SET attempts = attempts + 1 WHERE email = ? AND expires_at > ? AND attempts < ? RETURNING attempts')
      .bind(input.email, input.now, input.maxAttempts)
      .first<{ attempts: number }>(),
  );
  if (!counted) return false;
  const used = await guard(() =>
    db.prepare('DELETE FROM email_codes WHERE email = ? AND code_hash = ? AND expires_at > ? RETURNING email').bind(input.email, input.codeHash, input.now).first<{ email: string }>(),
  );
  return used !== null;
}
