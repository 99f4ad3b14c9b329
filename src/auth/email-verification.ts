/**
 * Email verification (`EMAIL_VERIFICATION`): registration that does not reveal accounts, mailed
 * single-use links, confirming them, and resending them.
 *
 * Mail goes out only after the D1 work it belongs to has committed. When the transport fails,
 * the link just issued is deleted again before the error propagates: nothing is left that a
 * retry would trip over, and the per-account cool-down does not hold the retry back. Every
 * mail here is sent after the answer (mail/delivery.ts says why).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { sessionsOf } from './authenticate';
import { sendInBackground, sendNotice, sendNow } from '../mail/delivery';
import { alreadyRegisteredMessage, VERIFY_EMAIL_TTL_S, verifyEmailMessage } from '../mail/messages';
import { log } from '../observability/log';
import { ApiError } from '../http/errors';
import { accountTokenIssuedAt, issueAccountToken, peekAccountToken, redeemAccountToken, revokeAccountTokens, type TokenPurpose } from '../storage/account-tokens';
import { countRecentEvents, replacePendingPassword } from '../storage/email-verification';
import { listActiveSessions } from '../storage/sessions';
import { createUser, findUserByEmail, findUserById, updatePasswordHash, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { proveMailbox } from './mailbox-proof';
import { recordLoginFailure, recordLoginSuccess, reserveLoginAttempt } from './login-throttle';
import { hashPassword, verifyPassword } from './password-hash';
import { normalisePassword } from './password-policy';
import type { MailMessage } from '../mail/message';

/** At most one mailed link per account and purpose within this many seconds (resend, forgot). */
export const MAIL_COOLDOWN_S = 60;
/** "Someone tried to register with your address": at most this many per account and hour. */
const EXISTING_NOTICES_PER_HOUR = 3;

/**
 * Issues a link token and mails it; on a transport failure deletes the token again and
 * rethrows. With `cooldown`, does nothing (false) when a link of this purpose went out less
 * than {@link MAIL_COOLDOWN_S} ago. `beforeSend` runs after the token is issued (older links
 * are dead by then) and before the mail: D1 work that belongs to this link.
 */
export async function mailLink(
  c: Context<AppEnv>,
  user: Pick<User, 'id' | 'email'>,
  link: { purpose: TokenPurpose; ttlSeconds: number; message: (token: string) => MailMessage; cooldown: boolean; beforeSend?: () => Promise<unknown> },
): Promise<boolean> {
  const t = now();
  if (link.cooldown) {
    const last = await accountTokenIssuedAt(c.env.DB, user.id, link.purpose, t);
    if (last !== null && last > t - MAIL_COOLDOWN_S) return false;
  }
  const token = await issueAccountToken(c.env.DB, { userId: user.id, purpose: link.purpose, email: user.email, ttlSeconds: link.ttlSeconds, now: t });
  try {
    await link.beforeSend?.();
    await sendNow(c, link.message(token));
  } catch (e) {
    await revokeAccountTokens(c.env.DB, user.id, [link.purpose]).catch((err: unknown) => {
      log.error('account_token_cleanup_failed', { purpose: link.purpose, error: err instanceof Error ? err.message : String(err) });
    });
    throw e;
  }
  return true;
}

/** Mails a verification link for the user's current address (`returnTo`: where confirming leads). */
export function sendVerificationLink(c: Context<AppEnv>, user: Pick<User, 'id' | 'email'>, cooldown: boolean, beforeSend?: () => Promise<unknown>, returnTo?: string) {
  const config = c.get('config');
  return mailLink(c, user, { purpose: 'verify_email', ttlSeconds: VERIFY_EMAIL_TTL_S, message: (token) => verifyEmailMessage(config, user.email, token, returnTo), cooldown, beforeSend });
}

/**
 * Registration with `EMAIL_VERIFICATION=required`: the same outcome for every address, so the
 * answer reveals nothing. New address: an unverified account and a verification link. An
 * account that never finished (unverified, with a password): the new password replaces the
 * pending one and a fresh link goes out (older links die with it: the link always belongs to
 * the latest registration). Any other account: its owner is told someone tried, and nothing
 * changes. No session is started in any case.
 *
 * All of it runs after the answer: creating the account is a D1 write only a new address gets,
 * and the mail goes to a new or an existing owner alike, so the answer waits for neither (its
 * timing would tell which). A relay failure is logged and leaves no link; registering again (or
 * "resend") sends a fresh one.
 */
export async function registerPendingAccount(c: Context<AppEnv>, input: { email: string; name?: string; passwordHash: string; returnTo?: string }): Promise<void> {
  sendInBackground(c, 'register', () => settleRegistration(c, input));
}

async function settleRegistration(c: Context<AppEnv>, input: { email: string; name?: string; passwordHash: string; returnTo?: string }): Promise<void> {
  const created = await createUser(c.env.DB, { email: input.email, emailVerified: false, name: input.name, passwordHash: input.passwordHash }, now());
  if (created) {
    await sendVerificationLink(c, created, false, undefined, input.returnTo);
    await recordEvent(c, { event: 'register', outcome: 'success', userId: created.id, detail: { verification: 'sent' } });
    return;
  }
  const existing = await findUserByEmail(c.env.DB, input.email);
  if (!existing) throw new Error('registration: the address is taken but no user has it'); // a concurrent delete: logged, a retry works
  // Only password accounts are confirmed by link: a provider-only account's address is its
  // provider's to vouch for, and a link mailed for it would let whoever holds that account have
  // the mailbox owner confirm an address that is not theirs (its owner is told instead, below).
  if (!existing.emailVerified && existing.passwordHash !== null && existing.disabledAt === null) {
    // Only a registration still pending (hours old, never signed in) takes the new password:
    // an older unverified account may be someone's account in use, which a stranger's
    // registration must not lock out. Its owner gets the link; the password stays.
    const pending = existing.createdAt > now() - VERIFY_EMAIL_TTL_S && (await listActiveSessions(sessionsOf(c, existing.id), now())).length === 0;
    const replace = pending ? () => replacePendingPassword(c.env.DB, existing.id, input.passwordHash, now()) : undefined;
    const sent = await sendVerificationLink(c, existing, true, replace, input.returnTo);
    await recordEvent(c, { event: 'register', outcome: 'failure', userId: existing.id, detail: { reason: 'unverified_account', password_replaced: pending && sent, verification: sent ? 'sent' : 'cooldown' } });
    return;
  }
  const recent = await countRecentEvents(c.env.DB, existing.id, 'register_existing_notice', now() - 3600);
  if (recent < EXISTING_NOTICES_PER_HOUR) {
    sendNotice(c, alreadyRegisteredMessage(c.get('config'), existing.email));
    await recordEvent(c, { event: 'register_existing_notice', outcome: 'success', userId: existing.id });
  }
  await recordEvent(c, { event: 'register', outcome: 'failure', userId: existing.id, detail: { reason: 'email_taken' } });
}

/**
 * `EMAIL_VERIFICATION=optional`: the account is already usable; the link is an offer. It goes
 * out in the background, so a mail outage does not fail a registration that has committed
 * (the user can ask for another link; the failure is logged).
 */
export function offerVerification(c: Context<AppEnv>, user: User): void {
  sendInBackground(c, 'verify_email', () => sendVerificationLink(c, user, false));
}

/**
 * Resend: a fresh link for an unverified, enabled password account, at most one per
 * {@link MAIL_COOLDOWN_S}. The caller answers the same whatever happens here, and runs it in
 * the background (mail/delivery.ts `sendInBackground`) so that neither the answer nor its timing depends on
 * whether the account exists.
 */
export async function resendVerification(c: Context<AppEnv>, email: string, returnTo?: string): Promise<void> {
  const user = await findUserByEmail(c.env.DB, email);
  // Password accounts only, as in registerPendingAccount.
  if (!user || user.emailVerified || user.passwordHash === null || user.disabledAt !== null) return;
  const sent = await sendVerificationLink(c, user, true, undefined, returnTo);
  await recordEvent(c, { event: 'verification_resent', outcome: sent ? 'success' : 'failure', userId: user.id, detail: sent ? {} : { reason: 'cooldown' } });
}

export type ConfirmResult =
  /** `passwordChecked`: the confirming person gave the account's password (they may be signed in). */
  | { status: 'verified'; user: User; passwordChecked: boolean }
  | { status: 'already_verified'; user: User }
  | { status: 'invalid' };

const wrongPassword = () =>
  new ApiError('invalid_credentials', 'That is not the password this account was created with. Enter the password you chose when you registered.');

/**
 * Confirms an address with a verification link. The link alone does not prove who chose the
 * account's password: anyone can register someone else's address with a password of their own,
 * and the mailbox owner's click would then verify the stranger's account. So the account's
 * password is required too, checked before the link is used and counted like a sign-in
 * (auth/login-throttle.ts): a wrong one leaves the link and the account as they were. Then the
 * token is used up (atomically, once) and the address marked verified, only while it is still
 * the user's and the password still the one just checked (a re-registration in between
 * replaces both the link and the password). Marking it verified is a proof of the mailbox like
 * any other (auth/mailbox-proof.ts): sessions, factors, identities and links an unproven
 * holder could have added go in the same batch; the password just checked stays.
 *
 * A link for an address already verified changes nothing and needs no password; an account
 * without a password (none is mailed a link now, older links may exist) is confirmed as before.
 */
export async function confirmEmail(c: Context<AppEnv>, token: string, password: string | undefined): Promise<ConfirmResult> {
  const t = now();
  const found = await peekAccountToken(c.env.DB, token, 'verify_email', t);
  const owner = found ? await findUserById(c.env.DB, found.userId) : null;
  if (!found || !owner || owner.email !== found.email) return { status: 'invalid' };
  // The hash the confirming person must match (null: no password to prove).
  const checkedHash = owner.emailVerified ? null : owner.passwordHash;
  let rehash = false;
  if (checkedHash !== null) {
    if (password === undefined) throw new ApiError('invalid_credentials', 'Enter the password you chose when you registered to confirm this address.');
    rehash = await checkConfirmingPassword(c, owner, checkedHash, normalisePassword(password));
  }
  const redeemed = await redeemAccountToken(c.env.DB, token, 'verify_email', t);
  if (!redeemed) return { status: 'invalid' };
  const user = await findUserById(c.env.DB, redeemed.userId);
  if (!user || user.email !== redeemed.email) return { status: 'invalid' };
  if (user.emailVerified) return { status: 'already_verified', user };
  // Only with the hash just checked: if another registration replaced it since, this click proves nothing.
  const proved = await proveMailbox(c, user, { email: redeemed.email, via: { method: 'verification_link' }, password: { kind: 'keep', expected: checkedHash ?? undefined } });
  if (!proved.claimed) {
    // A concurrent proof verified it first (a message, no sign-in); anything else (the password
    // replaced, the address changed) proves nothing.
    const current = proved.user;
    return current?.emailVerified && current.email === redeemed.email ? { status: 'already_verified', user: current } : { status: 'invalid' };
  }
  const passwordChecked = checkedHash !== null;
  if (passwordChecked) {
    await recordLoginSuccess(c, user.email);
    if (rehash && password !== undefined) await updatePasswordHash(c.env.DB, user.id, await hashPassword(normalisePassword(password)), now());
  }
  await recordEvent(c, { event: 'email_verified', outcome: 'success', userId: user.id, detail: { via: 'link', password: passwordChecked } });
  return { status: 'verified', user: proved.user ?? { ...user, emailVerified: true }, passwordChecked };
}

/**
 * The password check of a confirmation, throttled and counted exactly like a password sign-in
 * (per-account back-off, failure burst alert); a wrong password throws `invalid_credentials`.
 * True when the hash should be upgraded (done once the confirmation has succeeded: upgrading
 * first would change the hash the confirmation is conditioned on).
 */
async function checkConfirmingPassword(c: Context<AppEnv>, user: User, hash: string, password: string): Promise<boolean> {
  const attempt = await reserveLoginAttempt(c, user.email);
  const result = await verifyPassword(password, hash);
  if (!result.ok) {
    await recordEvent(c, { event: 'email_verified', outcome: 'failure', userId: user.id, detail: { reason: 'wrong_password' } });
    await recordLoginFailure(c, attempt, user.id);
    throw wrongPassword();
  }
  return result.needsRehash;
}
