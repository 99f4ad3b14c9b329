/**
 * The D1 writes of email verification and password reset: each is one batch, so a
 * user is never left half-changed (a password set but its reset links still live, an address
 * marked verified but its verification links still working).
 */
import { guard } from './errors';

/**
 * Marks `email` verified for the user without a proof of the mailbox (an administrator's
 * decision: nothing is removed; a proof goes through storage/mailbox-proof.ts), only while it
 * is still the user's address, and drops the user's verification links. With `passwordHash`,
 * only while the password is still that one. True when the address is (now) verified.
 */
export async function markEmailVerified(db: D1Database, userId: string, email: string, now: number, passwordHash?: string): Promise<boolean> {
  const update =
    passwordHash === undefined
      ? db.prepare('UPDATE users SET email_verified = 1, updated_at = ? WHERE id = ? AND email = ?').bind(now, userId, email)
      : db.prepare('UPDATE users SET email_verified = 1, updated_at = ? WHERE id = ? AND email = ? AND password_hash = ?').bind(now, userId, email, passwordHash);
  const [result] = await guard(() =>
    db.batch([
      update,
      // Only once verified: a refused update must not delete the link of a newer registration.
      db.prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose = 'verify_email' AND EXISTS (SELECT 1 FROM users WHERE id = ? AND email_verified = 1)").bind(userId, userId),
    ]),
  );
  return (result?.meta.changes ?? 0) === 1;
}

/**
 * A password reset whose link proves nothing about the current address (it went to one the
 * account has since changed): the new hash, and every reset link of the user gone (single use,
 * and "any password change invalidates them"). A reset that proves the address goes through
 * storage/mailbox-proof.ts instead. False when the user no longer exists.
 */
export async function setPasswordFromReset(db: D1Database, userId: string, hash: string, now: number): Promise<boolean> {
  const [update] = await guard(() =>
    db.batch([
      db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').bind(hash, now, userId),
      db.prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose = 'password_reset'").bind(userId),
    ]),
  );
  return (update?.meta.changes ?? 0) === 1;
}

/**
 * A new registration for an address whose password account was never verified: the latest
 * registrant's password replaces the pending one (only the mailbox owner can finish it, with
 * the link mailed for this registration), and the pending reset links go. Never touches a
 * verified account or one without a password (a provider account). True when replaced.
 */
export async function replacePendingPassword(db: D1Database, userId: string, hash: string, now: number): Promise<boolean> {
  const [update] = await guard(() =>
    db.batch([
      db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND email_verified = 0 AND password_hash IS NOT NULL').bind(hash, now, userId),
      db.prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose = 'password_reset'").bind(userId),
    ]),
  );
  return (update?.meta.changes ?? 0) === 1;
}

/** How many `event` rows the user has since `since`: a per-account limit without a counter table. */
export async function countRecentEvents(db: D1Database, userId: string, event: string, since: number): Promise<number> {
  const row = await guard(() =>
    db.prepare('SELECT COUNT(*) AS n FROM auth_events WHERE user_id = ? AND event = ? AND at >= ?').bind(userId, event, since).first<{ n: number }>(),
  );
  return row?.n ?? 0;
}
