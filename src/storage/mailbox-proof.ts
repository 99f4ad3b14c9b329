/**
 * The D1 side of an address becoming verified through proof of its mailbox (a verified provider
 * sign-in, a mailed code, a reset link, a registration link). While an address is unverified,
 * anyone may have registered it and added ways in: an account can be set up and used before
 * anyone has proved the address (a deployment without mail verifies nothing). So the moment the
 * mailbox owner proves it, everything such a holder could have added goes, in the same
 * transaction that marks the address verified:
 *
 * - passkeys, the authenticator (confirmed or not), recovery codes, pending second-factor
 *   states and WebAuthn challenges bound to the user;
 * - linked identities (but the one doing the proving, for a provider sign-in);
 * - mailed links of every purpose (an email-change link could move the account away), and
 *   sign-in codes for the address;
 * - the password, unless the proof came with it (a confirmation checked it, a reset sets it).
 *
 * Every deletion is conditioned on the account still being unverified at this address, and the
 * statement that marks it verified comes last: for a verified account the whole batch changes
 * nothing (but a reset's new password), and of two concurrent proofs only one wipes.
 *
 * Kept, on purpose: the account's id, name, avatar and stored roles (given by an administrator,
 * not by the holder), its audit rows, and the sign-in failure counters (a throttle, not a way in).
 */
import { guard } from './errors';

/** What a proof does to the password. */
export type PasswordOnProof =
  /** The proof did not come with the password (provider sign-in, mailed code): it goes. */
  | { kind: 'remove' }
  /** A reset: the new password, set in the same batch whether or not the address was verified. */
  | { kind: 'set'; hash: string }
  /**
   * A confirmation that checked the password: it stays, and the proof holds only while the
   * password is still `expected` (a re-registration that replaced it meanwhile proves nothing).
   * Without `expected` (an account without a password) there is nothing to hold it to.
   */
  | { kind: 'keep'; expected?: string };

export interface MailboxProofInput {
  userId: string;
  /** The proven address: the proof counts only while it is still the account's address. */
  email: string;
  password: PasswordOnProof;
  /** The identity doing the proving (a returning provider sign-in): it stays linked. */
  keepIdentity?: { provider: string; subject: string };
  now: number;
}

export interface MailboxProofOutcome {
  /** True when this batch turned the address from unverified to verified (and wiped). */
  claimed: boolean;
  /** With `set`: whether the password was stored (false: the user is gone). */
  passwordSet: boolean;
  /** Rows removed, per kind, for the audit trail. */
  removed: { passkeys: number; authenticator: number; recoveryCodes: number; identities: number; links: number };
}

/**
 * Applies a proof of the mailbox in one D1 batch (one transaction). See the module comment for
 * what is removed and why. False `claimed` with nothing removed: the account was already
 * verified, is gone, has another address now, or (`keep`) another password.
 */
export async function applyMailboxProof(db: D1Database, input: MailboxProofInput): Promise<MailboxProofOutcome> {
  const { userId, email, password, now } = input;
  const expected = password.kind === 'keep' ? password.expected : undefined;
  // ?1 user id, ?2 address, ?3 the password the proof is held to (when there is one).
  const unproven = `EXISTS (SELECT 1 FROM users WHERE id = ?1 AND email = ?2 AND email_verified = 0${expected === undefined ? '' : ' AND password_hash = ?3'})`;
  const guardArgs: unknown[] = expected === undefined ? [userId, email] : [userId, email, expected];
  const wipe = (sql: string, ...more: unknown[]) => db.prepare(sql).bind(...guardArgs, ...more);
  const keep = input.keepIdentity;
  // Numbered parameters after the guard's: ?4/?5 (or ?3/?4 without a password to hold to).
  const next = guardArgs.length + 1;
  const statements = [
    wipe(`DELETE FROM passkeys WHERE user_id = ?1 AND ${unproven}`),
    wipe(`DELETE FROM totp_factors WHERE user_id = ?1 AND ${unproven}`),
    wipe(`DELETE FROM recovery_codes WHERE user_id = ?1 AND ${unproven}`),
    wipe(`DELETE FROM mfa_pending WHERE user_id = ?1 AND ${unproven}`),
    wipe(`DELETE FROM webauthn_challenges WHERE user_id = ?1 AND ${unproven}`),
    keep === undefined
      ? wipe(`DELETE FROM identities WHERE user_id = ?1 AND ${unproven}`)
      : wipe(`DELETE FROM identities WHERE user_id = ?1 AND NOT (provider = ?${next} AND subject = ?${next + 1}) AND ${unproven}`, keep.provider, keep.subject),
    wipe(`DELETE FROM account_tokens WHERE user_id = ?1 AND ${unproven}`),
    wipe(`DELETE FROM email_codes WHERE email = ?2 AND ${unproven}`),
  ];
  if (password.kind === 'set') {
    // A reset sets the password and uses up its links whether or not the address was verified.
    statements.push(
      db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').bind(password.hash, now, userId),
      db.prepare("DELETE FROM account_tokens WHERE user_id = ? AND purpose = 'password_reset'").bind(userId),
    );
  }
  // Last: the statements above read `email_verified = 0` and must all see the unproven account.
  const dropPassword = password.kind === 'remove' ? ', password_hash = NULL' : '';
  statements.push(wipe(`UPDATE users SET email_verified = 1${dropPassword}, updated_at = ?${next} WHERE id = ?1 AND email = ?2 AND email_verified = 0${expected === undefined ? '' : ' AND password_hash = ?3'}`, now));
  const results = await guard(() => db.batch(statements));
  const changes = (i: number) => results[i]?.meta.changes ?? 0;
  return {
    claimed: changes(results.length - 1) === 1,
    passwordSet: password.kind === 'set' && changes(8) === 1,
    removed: { passkeys: changes(0), authenticator: changes(1), recoveryCodes: changes(2), identities: changes(5), links: changes(6) },
  };
}
