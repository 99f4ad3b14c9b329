/**
 * Account self-service: change the password, add a first password through a
 * mailed link, change the email address through a link to the new one, delete the account, and
 * unlink a sign-in method. Routes (routes/account-changes.ts) parse input and shape answers;
 * the rules live here, the multi-row writes in storage/account-changes.ts.
 *
 * Order, so that no failure leaves a half-changed account: checks first (nothing written), then
 * sessions are ended (idempotent: a retry after a KV failure finishes the job, and the
 * credentials it needs are still the old ones), then the one D1 transaction of the change, then
 * the audit row, then mail.
 */
import type { Context } from 'hono';
import type { AppEnv, AuthUser } from '../env';
import { ApiError, badRequest } from '../http/errors';
import { sendAccountNotice, sendNow } from '../mail/delivery';
import { MailUnavailableError } from '../mail/errors';
import { addPasswordMessage, changeEmailMessage } from '../mail/messages';
import { mailEnabled } from '../mail/send';
import { findProvider } from '../providers/registry';
import { issueAccountToken, peekAccountToken, redeemAccountToken, revokeAccountTokens, type AccountToken, type TokenPurpose } from '../storage/account-tokens';
import {
  addPasswordIfNone,
  anotherStoredAdminExists,
  changeEmailIfFree,
  deleteUserAndData,
  setPasswordRevokingLinks,
  unlinkIdentityKeepingOne,
} from '../storage/account-changes';
import { listUserIdentities } from '../storage/identities';
import { forgetSessions, sessionIdsWithLiveTokens } from '../storage/sessions';
import { findUserByEmail, findUserById, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { assertNotBreached } from './breached-password';
import { emailDomainAllowed } from './roles';
import { liveSessionUser, sessionsOf } from './authenticate';
import { recordEvent } from './events';
import { recordLoginFailure, recordLoginSuccess, reserveLoginAttempt } from './login-throttle';
import { hashPassword, verifyPassword } from './password-hash';
import { checkNewPassword, normalisePassword } from './password-policy';
import { isRecentSignIn } from './recent-sign-in';
import { endAllSessions, endSessions, tokenLifetime } from './sessions';

/** How long a mailed add-password or change-email link works. */
export const LINK_TTL_SECONDS = 30 * 60;

const linkRefused = () => badRequest('This link is invalid, has expired or was already used. Start again from your account page.');

/** The signed-in user's current record; a deleted or disabled account, or a session ended in its object, is refused like an ended session. */
const liveUser = (c: Context<AppEnv>, auth: AuthUser): Promise<User> => liveSessionUser(c, auth);

/**
 * Checks the current password. A wrong one counts against the account's sign-in back-off
 * exactly like a failed sign-in (a stolen session must not become an unthrottled password
 * oracle); a right one clears the count, as a sign-in does.
 */
async function checkCurrentPassword(c: Context<AppEnv>, user: User, password: string, action: string): Promise<void> {
  if (!user.passwordHash) throw new ApiError('conflict', 'This account has no password.');
  const attempt = await reserveLoginAttempt(c, user.email);
  const result = await verifyPassword(normalisePassword(password), user.passwordHash);
  if (!result.ok) {
    await recordEvent(c, { event: 'reauthentication', outcome: 'failure', userId: user.id, detail: { action, reason: 'wrong_password' } });
    await recordLoginFailure(c, attempt, user.id);
    throw new ApiError('invalid_credentials', 'The current password is incorrect.');
  }
  await recordLoginSuccess(c, user.email);
}

/** A new password that passes the registration policy, hashed. */
async function newPasswordHash(c: Context<AppEnv>, password: string): Promise<string> {
  const config = c.get('config');
  const normalised = normalisePassword(password);
  const problem = checkNewPassword(normalised, config.PASSWORD_MIN_LENGTH);
  if (problem) throw badRequest(problem.message);
  await assertNotBreached(normalised, config.BREACHED_PASSWORD_CHECK);
  return hashPassword(normalised);
}

/**
 * Ends every session of the user but `keep` (the user's object, then KV), including those ended so recently
 * that their tokens may still verify: a retry after a failed KV write completes the job.
 */
async function endOtherSessions(c: Context<AppEnv>, userId: string, keep: string): Promise<number> {
  const ids = (await sessionIdsWithLiveTokens(sessionsOf(c, userId), now(), tokenLifetime(c))).filter((id) => id !== keep);
  return endSessions(c, userId, ids);
}

function requireMail(c: Context<AppEnv>): void {
  if (!mailEnabled(c.get('config'))) throw new ApiError('forbidden', 'This gateway cannot send mail, so this change is not available.');
}

/** Issues a link token and mails it; if the mail cannot go, the token is revoked again (nothing half-done). */
async function mailLink(c: Context<AppEnv>, user: User, purpose: TokenPurpose, to: string): Promise<void> {
  const token = await issueAccountToken(c.env.DB, { userId: user.id, purpose, email: to, ttlSeconds: LINK_TTL_SECONDS, now: now() });
  const minutes = LINK_TTL_SECONDS / 60;
  const config = c.get('config');
  const message = purpose === 'add_password' ? addPasswordMessage(config, to, token, minutes) : changeEmailMessage(config, to, token, minutes, user.email);
  try {
    await sendNow(c, message);
  } catch (e) {
    if (e instanceof MailUnavailableError) await revokeAccountTokens(c.env.DB, user.id, [purpose]);
    throw e;
  }
}

/**
 * Re-authentication for a sensitive change: the current password when given, else a sign-in
 * within `RECENT_AUTH_SECONDS`, the one window of every change to how the account is reached
 * (with a provider only, when `providerOnly`: a password session must type its password again).
 */
async function reauthenticate(c: Context<AppEnv>, auth: AuthUser, user: User, password: string | undefined, action: string, providerOnly: boolean) {
  if (password !== undefined && password !== '') return checkCurrentPassword(c, user, password, action);
  const viaProvider = !auth.amr.includes('pwd');
  const window = c.get('config').RECENT_AUTH_SECONDS;
  if (isRecentSignIn(auth.authTime, now(), window) && (!providerOnly || viaProvider)) return;
  const minutes = Math.floor(window / 60);
  throw new ApiError(
    'forbidden',
    user.passwordHash
      ? 'Enter your current password to confirm this change.'
      : `Confirm it is you: sign in again with your provider, then retry within ${minutes} minutes.`,
    { fields: { reauthenticate: true } },
  );
}

export interface ChangeResult {
  /** Whether a notice mail was queued (false: this gateway cannot send mail); it goes after the answer. */
  noticeSent: boolean;
}

/** Changes the password; the caller's session stays, every other one ends. */
export async function changePassword(c: Context<AppEnv>, auth: AuthUser, input: { currentPassword: string; newPassword: string }): Promise<ChangeResult & { endedSessions: number }> {
  const user = await liveUser(c, auth);
  if (!user.passwordHash) throw new ApiError('conflict', 'This account has no password yet: add one from your account page.');
  const hash = await newPasswordHash(c, input.newPassword);
  await checkCurrentPassword(c, user, input.currentPassword, 'change_password');
  const endedSessions = await endOtherSessions(c, user.id, auth.sessionId);
  await setPasswordRevokingLinks(c.env.DB, user.id, hash, now());
  await recordEvent(c, { event: 'password_changed', outcome: 'security', userId: user.id, detail: { ended_sessions: endedSessions, message: 'The user changed their password; their other sessions were ended.' } });
  return { endedSessions, noticeSent: sendAccountNotice(c, user, 'password_changed') };
}

/**
 * Mails a link that sets a first password, to the account's verified address. The caller has
 * checked for a recent sign-in (a password is a new way in); the owner is told once it is set.
 */
export async function requestAddPassword(c: Context<AppEnv>, auth: AuthUser): Promise<void> {
  const user = await liveUser(c, auth);
  if (c.get('config').PASSWORD_LOGIN === 'disabled') throw new ApiError('forbidden', 'Password sign-in is disabled on this gateway.');
  if (user.passwordHash) throw new ApiError('conflict', 'This account already has a password. Change it instead.');
  requireMail(c);
  if (!user.emailVerified) throw new ApiError('forbidden', 'The email address of this account is not verified, so no link can be mailed to it.');
  await mailLink(c, user, 'add_password', user.email);
  await recordEvent(c, { event: 'add_password_requested', outcome: 'success', userId: user.id });
}

/** The token's account, if the token would redeem and was sent to the account's present address. */
async function tokenAccount(c: Context<AppEnv>, token: AccountToken | null, purpose: TokenPurpose): Promise<{ token: AccountToken; user: User } | null> {
  if (!token) return null;
  const user = await findUserById(c.env.DB, token.userId);
  if (!user || user.disabledAt !== null) return null;
  // An add-password link went to the address the account had then; after an email change it is stale.
  if (purpose === 'add_password' && token.email !== user.email) return null;
  return { token, user };
}

/** For the page a link opens: what the token is for, without using it (mail scanners fetch links). */
export async function peekLink(c: Context<AppEnv>, raw: string, purpose: TokenPurpose): Promise<{ token: AccountToken; user: User } | null> {
  return tokenAccount(c, await peekAccountToken(c.env.DB, raw, purpose, now()), purpose);
}

/** Sets the first password from a mailed link. The password is checked before the link is used up. */
export async function completeAddPassword(c: Context<AppEnv>, raw: string, password: string): Promise<ChangeResult> {
  if (!(await peekLink(c, raw, 'add_password'))) throw linkRefused();
  const hash = await newPasswordHash(c, password);
  const found = await tokenAccount(c, await redeemAccountToken(c.env.DB, raw, 'add_password', now()), 'add_password');
  if (!found) throw linkRefused();
  if (!(await addPasswordIfNone(c.env.DB, found.user.id, hash, now()))) throw new ApiError('conflict', 'This account already has a password. Change it from your account page.');
  await recordEvent(c, { event: 'password_added', outcome: 'security', userId: found.user.id, detail: { message: 'A password was added to the account through a mailed link.' } });
  return { noticeSent: sendAccountNotice(c, found.user, 'password_added') };
}

/**
 * Mails a confirmation link to the new address. The answer is the same whether or not another
 * account holds that address (the mail round must not reveal accounts); confirmation refuses then.
 */
export async function requestEmailChange(c: Context<AppEnv>, auth: AuthUser, input: { newEmail: string; currentPassword?: string }): Promise<void> {
  const user = await liveUser(c, auth);
  requireMail(c);
  if (input.newEmail === user.email) throw badRequest('That is already the address of this account.');
  if (!emailDomainAllowed(input.newEmail, c.get('config'))) throw new ApiError('forbidden', 'Accounts with this email domain are not allowed.');
  await reauthenticate(c, auth, user, input.currentPassword, 'change_email', false);
  await mailLink(c, user, 'change_email', input.newEmail);
  await recordEvent(c, { event: 'email_change_requested', outcome: 'success', userId: user.id });
  // The present address hears of it now: the new one is about to become a way in.
  sendAccountNotice(c, user, 'email_change_requested', input.newEmail);
}

/**
 * Who is confirming an email change: the session making the request (if any) and the password
 * typed on the confirmation page (if any).
 */
export interface EmailChangeConfirmer {
  auth?: AuthUser;
  password?: string;
}

/**
 * Whether the confirmer may finish the change for `user`: a recent sign-in OF THAT ACCOUNT, or
 * its password. The link alone proves only that someone reads the new mailbox, not that they
 * want this account to hold it: with the link alone, an attacker who asked to move their own
 * account to a victim's address would own it verified once the victim clicked "confirm".
 */
async function confirmerMayChange(c: Context<AppEnv>, user: User, confirmer: EmailChangeConfirmer): Promise<void> {
  const { auth, password } = confirmer;
  if (password !== undefined && password !== '') return checkCurrentPassword(c, user, password, 'confirm_email_change');
  // The session must be live in its object too: a claim has ended the squatter's, whose token may still pass elsewhere.
  if (auth !== undefined && auth.id === user.id && isRecentSignIn(auth.authTime, now(), c.get('config').RECENT_AUTH_SECONDS) && (await sessionStillLive(c, auth))) return;
  const minutes = Math.round(c.get('config').RECENT_AUTH_SECONDS / 60);
  throw new ApiError(
    'forbidden',
    user.passwordHash
      ? `Enter the password of the account currently using ${user.email} to confirm the change.`
      : `Sign in to the account currently using ${user.email}, then open the link again within ${minutes} minutes.`,
    { fields: { reauthenticate: true } },
  );
}

/** Whether `auth`'s session is live in its object (an ended one is false; a storage fault propagates). */
async function sessionStillLive(c: Context<AppEnv>, auth: AuthUser): Promise<boolean> {
  try {
    await liveSessionUser(c, auth);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_token') return false;
    throw e;
  }
}

/**
 * Confirms a new address from its link, for the account's holder only (see
 * {@link confirmerMayChange}): checked before the link is used, so a refusal leaves it working.
 * 409 with nothing changed if another account holds the address now. Every other session of the
 * account ends first (as for a password change): none keeps the old address, or roles that
 * came with it, until its next refresh. The session confirming (if it is the account's) stays.
 */
export async function confirmEmailChange(c: Context<AppEnv>, raw: string, confirmer: EmailChangeConfirmer): Promise<ChangeResult & { email: string; endedSessions: number }> {
  const peeked = await peekLink(c, raw, 'change_email');
  if (!peeked) throw linkRefused();
  if (!emailDomainAllowed(peeked.token.email, c.get('config'))) throw new ApiError('forbidden', 'Accounts with this email domain are not allowed.');
  await confirmerMayChange(c, peeked.user, confirmer);
  const taken = async () => {
    await recordEvent(c, { event: 'email_change', outcome: 'failure', userId: peeked.user.id, detail: { reason: 'email_taken' } });
    return new ApiError('conflict', 'Another account uses this address now, so the change cannot be made. Nothing was changed.');
  };
  // Refused before any session ends; the batch below still refuses an address taken in between.
  if (await findUserByEmail(c.env.DB, peeked.token.email)) throw await taken();
  const found = await tokenAccount(c, await redeemAccountToken(c.env.DB, raw, 'change_email', now()), 'change_email');
  if (!found || found.user.id !== peeked.user.id) throw linkRefused();
  const { token, user } = found;

  const keep = confirmer.auth?.id === user.id ? confirmer.auth.sessionId : undefined;
  const endedSessions = keep === undefined ? (await endAllSessions(c, user.id)).length : await endOtherSessions(c, user.id, keep);
  if (!(await changeEmailIfFree(c.env.DB, user.id, token.email, now()))) throw await taken();
  await recordEvent(c, {
    event: 'email_changed',
    outcome: 'security',
    userId: user.id,
    detail: { ended_sessions: endedSessions, message: 'The account moved to a new, confirmed email address; its other sessions were ended and the old address was told.' },
  });
  return { email: token.email, endedSessions, noticeSent: sendAccountNotice(c, user, 'email_changed', token.email) };
}

/**
 * Deletes the account. Refused for the last holder of the stored `admin` role when ADMIN_EMAILS
 * names nobody: the gateway would be left with no one able to administer it.
 */
export async function deleteAccount(c: Context<AppEnv>, auth: AuthUser, input: { password?: string }): Promise<ChangeResult> {
  const user = await liveUser(c, auth);
  await reauthenticate(c, auth, user, input.password, 'delete_account', true);
  if (user.roles.includes('admin') && c.get('config').ADMIN_EMAILS.length === 0 && !(await anotherStoredAdminExists(c.env.DB, user.id))) {
    throw new ApiError('conflict', 'This is the only administrator account. Make someone else an administrator first.');
  }
  const ended = await endAllSessions(c, user.id, auth.sessionId);
  await forgetSessions(sessionsOf(c, user.id));
  await deleteUserAndData(c.env.DB, user.id);
  await recordEvent(c, { event: 'account_deleted', outcome: 'security', userId: user.id, detail: { ended_sessions: ended.length, message: 'The user deleted their account.' } });
  return { noticeSent: sendAccountNotice(c, user, 'account_deleted') };
}

/**
 * Unlinks one of the user's identities while another way to sign in remains. The caller has
 * checked for a recent sign-in; the owner is told.
 */
export async function unlinkIdentity(c: Context<AppEnv>, auth: AuthUser, key: { provider: string; subject: string }): Promise<void> {
  const user = await liveUser(c, auth);
  if (await unlinkIdentityKeepingOne(c.env.DB, user.id, key.provider, key.subject)) {
    await recordEvent(c, { event: 'identity_unlinked', outcome: 'success', userId: user.id, detail: { provider: key.provider } });
    sendAccountNotice(c, user, 'identity_unlinked', findProvider(c.get('config'), key.provider)?.name ?? key.provider);
    return;
  }
  const mine = (await listUserIdentities(c.env.DB, user.id)).some((i) => i.provider === key.provider && i.subject === key.subject);
  if (!mine) throw new ApiError('not_found', 'No such sign-in method on this account.');
  throw new ApiError('conflict', 'This is the last way to sign in to this account. Add a password or link another provider first.');
}
