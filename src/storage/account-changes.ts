/**
 * The multi-row changes of account self-service, each one D1 batch (one
 * transaction) or one conditional statement, so a refused or failed change leaves nothing
 * half-written: a password set together with the revocation of the links it makes stale, an
 * email changed only while no other account holds the address, an identity unlinked only while
 * another way to sign in remains, and an account deleted with everything that hangs off it.
 */
import { guard } from './errors';

/**
 * Replaces the password hash and deletes the user's `password_reset` and `add_password` links in
 * one transaction (a password change makes a mailed reset link stale).
 */
export async function setPasswordRevokingLinks(db: D1Database, userId: string, hash: string, now: number): Promise<boolean> {
  const [updated] = await guard(() =>
    db.batch([
      db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').bind(hash, now, userId),
      db.prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose IN ('password_reset', 'add_password')").bind(userId),
    ]),
  );
  return updated!.meta.changes === 1;
}

/**
 * Sets a password on an account that has none (a provider-only account), revoking reset links;
 * false when the account has one meanwhile (a second tab, a double submit) or is gone.
 */
export async function addPasswordIfNone(db: D1Database, userId: string, hash: string, now: number): Promise<boolean> {
  const [updated] = await guard(() =>
    db.batch([
      db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash IS NULL').bind(hash, now, userId),
      db.prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose IN ('password_reset', 'add_password')").bind(userId),
    ]),
  );
  return updated!.meta.changes === 1;
}

/**
 * Moves the account to a new, now verified, address. `UPDATE OR IGNORE` skips the row when the
 * unique email index would be violated, so an address another account took meanwhile is a
 * plain `false` (nothing changed), never a constraint error. The user's other mailed links
 * (reset, verification) went to the old address and are deleted with it.
 */
export async function changeEmailIfFree(db: D1Database, userId: string, email: string, now: number): Promise<boolean> {
  const [updated] = await guard(() =>
    db.batch([
      db.prepare('UPDATE OR IGNORE users SET email = ?, email_verified = 1, updated_at = ? WHERE id = ?').bind(email, now, userId),
      db
        .prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose IN ('password_reset', 'verify_email') AND (SELECT email FROM users WHERE id = ?) = ?")
        .bind(userId, userId, email),
    ]),
  );
  return updated!.meta.changes === 1;
}

/**
 * Unlinks one identity only while the account keeps another way in: a password, or another
 * identity. One statement, so two concurrent unlinks of an account's last two identities
 * cannot both succeed. False when nothing was unlinked (unknown, someone else's, or the last).
 */
export async function unlinkIdentityKeepingOne(db: D1Database, userId: string, provider: string, subject: string): Promise<boolean> {
  const r = await guard(() =>
    db
      .prepare(
        `DELETE FROM identities WHERE provider = ? AND subject = ? AND user_id = ?
           AND ((SELECT password_hash FROM users WHERE id = ?) IS NOT NULL
                OR (SELECT COUNT(*) FROM identities WHERE user_id = ?) > 1)`,
      )
      .bind(provider, subject, userId, userId, userId)
      .run(),
  );
  return r.meta.changes === 1;
}

/**
 * SQL condition: an account other than the one bound first is not disabled and is an
 * administrator, by the stored `admin` role or by its verified address in ADMIN_EMAILS (lower-cased,
 * as addresses are stored). Bind {@link anotherEnabledAdminArgs}. One statement that writes under
 * it sees every write before it: two at once cannot each count on the other.
 */
export const ANOTHER_ENABLED_ADMIN = `EXISTS (SELECT 1 FROM users other WHERE other.id <> ? AND other.disabled_at IS NULL
  AND (EXISTS (SELECT 1 FROM json_each(other.roles) WHERE json_each.value = 'admin')
    OR (other.email_verified = 1 AND other.email IN (SELECT value FROM json_each(?)))))`;

export const anotherEnabledAdminArgs = (userId: string, adminEmails: readonly string[]) => [userId, JSON.stringify(adminEmails)] as const;

/** Whether {@link ANOTHER_ENABLED_ADMIN} holds for `userId`. */
export async function anotherEnabledAdminExists(db: D1Database, userId: string, adminEmails: readonly string[]): Promise<boolean> {
  const row = await guard(() => db.prepare(`SELECT ${ANOTHER_ENABLED_ADMIN} AS found`).bind(...anotherEnabledAdminArgs(userId, adminEmails)).first<{ found: number }>());
  return row?.found === 1;
}

/** Whether any other account that is not disabled holds the stored `admin` role. */
export async function anotherStoredAdminExists(db: D1Database, userId: string): Promise<boolean> {
  const row = await guard(() =>
    db
      .prepare(
        `SELECT 1 AS found FROM users WHERE id <> ? AND disabled_at IS NULL
           AND EXISTS (SELECT 1 FROM json_each(users.roles) WHERE json_each.value = 'admin') LIMIT 1`,
      )
      .bind(userId)
      .first<{ found: number }>(),
  );
  return row !== null;
}

/**
 * Deletes the account in one transaction: the sign-in failure counter of its address, then the
 * user row. Its identities, sessions (with their rotated refresh tokens), mailed links and
 * second-factor rows go with it by `ON DELETE CASCADE` (D1 enforces foreign keys). `auth_events`
 * rows have no foreign key and stay: the audit trail ages out by AUDIT_RETENTION_DAYS like any
 * other. False if the user was already gone.
 */
export async function deleteUserAndData(db: D1Database, userId: string): Promise<boolean> {
  const [, deleted] = await guard(() =>
    db.batch([
      db.prepare('DELETE FROM login_failures WHERE email = (SELECT email FROM users WHERE id = ?)').bind(userId),
      db.prepare('DELETE FROM users WHERE id = ?').bind(userId),
    ]),
  );
  return deleted!.meta.changes === 1;
}
