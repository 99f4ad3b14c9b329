/**
 * Forgot / reset password: a single-use link (purpose `password_reset`, 30 minutes,
 * replaced by a newer request, deleted by any password change), and the reset itself, which
 * sets the new password, ends every session of the user (its sessions object, then KV),
 * records a security event and mails the user a notice. A link that went to the account's
 * current address proves the mailbox: an unverified address becomes verified, with everything
 * an unproven holder could have added removed in the same batch (auth/mailbox-proof.ts).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { PASSWORD_RESET_TTL_S, passwordResetDoneMessage, passwordResetMessage } from '../mail/messages';
import { sendNotice } from '../mail/delivery';
import { log } from '../observability/log';
import { peekAccountToken, redeemAccountToken, type AccountToken } from '../storage/account-tokens';
import { setPasswordFromReset } from '../storage/email-verification';
import { proveMailbox } from './mailbox-proof';
import { findUserByEmail, findUserById, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { mailLink } from './email-verification';
import { recordEvent } from './events';
import { assertNotBreached } from './breached-password';
import { hashPassword } from './password-hash';
import { checkNewPassword, normalisePassword } from './password-policy';
import { endAllSessions } from './sessions';

/** The refusal for a reset link that is unknown, used, replaced, expired or tampered with. */
export const invalidResetLink = () =>
  new ApiError('invalid_link', 'This password reset link is not valid any more: it was used, replaced by a newer one, or has expired. Ask for a new one.');

/** Mails a reset link to an account with a password. `cooldown`: at most one per minute (self-service). */
export function sendResetLink(c: Context<AppEnv>, user: Pick<User, 'id' | 'email'>, cooldown: boolean): Promise<boolean> {
  const config = c.get('config');
  return mailLink(c, user, { purpose: 'password_reset', ttlSeconds: PASSWORD_RESET_TTL_S, message: (token) => passwordResetMessage(config, user.email, token), cooldown });
}

/**
 * `POST /password/forgot`: a link for an enabled account with a password; nothing for an
 * unknown address, a provider-only or a disabled account. The caller answers the same in
 * every case, and runs this in the background.
 */
export async function requestPasswordReset(c: Context<AppEnv>, email: string): Promise<void> {
  const user = await findUserByEmail(c.env.DB, email);
  if (!user || user.passwordHash === null || user.disabledAt !== null) {
    await recordEvent(c, { event: 'password_reset_requested', outcome: 'failure', userId: user?.id ?? null, detail: { reason: user ? 'not_eligible' : 'unknown_email' } });
    return;
  }
  const sent = await sendResetLink(c, user, true);
  await recordEvent(c, { event: 'password_reset_requested', outcome: sent ? 'success' : 'failure', userId: user.id, detail: sent ? {} : { reason: 'cooldown' } });
}

/** The live reset token and its user, without using it (for the page the link opens), or null. */
export async function checkResetToken(c: Context<AppEnv>, token: string): Promise<{ token: AccountToken; user: User } | null> {
  const found = await peekAccountToken(c.env.DB, token, 'password_reset', now());
  if (!found) return null;
  const user = await findUserById(c.env.DB, found.userId);
  if (!user || user.disabledAt !== null) return null;
  return { token: found, user };
}

/**
 * Sets a new password with a reset link. The password is checked before the link is used, so
 * a refused password leaves the link working. Every session ends before the link is used (a
 * sessions-object or KV failure is a 503 with the link intact, and a retry works), and again after the
 * new password is stored, for a session someone started with the old one in between.
 *
 * @returns how many sessions ended.
 */
export async function resetPassword(c: Context<AppEnv>, token: string, rawPassword: string): Promise<{ user: User; endedSessions: number }> {
  const config = c.get('config');
  const checked = await checkResetToken(c, token);
  if (!checked) throw invalidResetLink();
  const password = normalisePassword(rawPassword);
  const problem = checkNewPassword(password, config.PASSWORD_MIN_LENGTH);
  if (problem) throw new ApiError('invalid_request', problem.message);
  await assertNotBreached(password, config.BREACHED_PASSWORD_CHECK);
  const hash = await hashPassword(password);
  const ended = await endAllSessions(c, checked.user.id);
  const t = now();
  const redeemed = await redeemAccountToken(c.env.DB, token, 'password_reset', t);
  if (!redeemed || redeemed.userId !== checked.user.id) throw invalidResetLink(); // a double submit lost the race
  const user = await findUserById(c.env.DB, redeemed.userId);
  if (!user) throw invalidResetLink();
  // Reading the mail proves the address, if the link went to the user's current one: the new
  // password is set in the same batch as the proof (which, for an unverified address, removes
  // whatever an unproven holder added).
  const proves = user.email === redeemed.email;
  const stored = proves
    ? (await proveMailbox(c, user, { email: redeemed.email, via: { method: 'password_reset' }, password: { kind: 'set', hash } })).passwordSet
    : await setPasswordFromReset(c.env.DB, user.id, hash, t);
  if (!stored) throw invalidResetLink();
  const verifiedEmail = proves ? redeemed.email : null;
  let late: string[] = [];
  try {
    late = await endAllSessions(c, user.id);
  } catch (e) {
    // The sessions that existed were ended above; this only catches one started in the last
    // milliseconds with the old password. Logged loudly rather than failing a reset that is done.
    log.error('password_reset_late_sessions_failed', { user_id: user.id, error: e instanceof Error ? e.message : String(e) });
  }
  const endedSessions = ended.length + late.length;
  await recordEvent(c, { event: 'password_reset', outcome: 'security', userId: user.id, detail: { ended_sessions: endedSessions, email_verified: verifiedEmail !== null, message: 'The password was reset through a mailed link; every session was ended.' } });
  // A notice, after the answer (mail/delivery.ts): the reset is done and a relay failure must not undo or delay it.
  sendNotice(c, passwordResetDoneMessage(config, user.email));
  return { user: { ...user, passwordHash: hash, emailVerified: user.emailVerified || verifiedEmail !== null }, endedSessions };
}
