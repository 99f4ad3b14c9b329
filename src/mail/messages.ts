/**
 * Every message the gateway mails, in one place: what it says, to whom, and where its one link
 * leads. Each builder is pure (configuration and values in, a {@link MailMessage} out), composed
 * with compose.ts (plain text plus simple HTML, named for APP_NAME, every link built from
 * PUBLIC_URL). Tokens appear only in a message's link, never in a log line (the log names the
 * kind). When and how each one is sent is delivery.ts's rule, not this module's.
 */
import type { Config } from '../config/schema';
import { composeMail, gatewayLink } from './compose';
import type { MailMessage } from './message';

/** How long a verification link works; its message states it. */
export const VERIFY_EMAIL_TTL_S = 24 * 3600;
/** How long a password reset link works; its message states it. */
export const PASSWORD_RESET_TTL_S = 30 * 60;

// --- Links and codes: the person is waiting for these -------------------------------------

/** `returnTo` (already checked by safeReturnTo) rides along in the link: confirming signs in and goes there. */
export function verifyEmailMessage(config: Config, to: string, token: string, returnTo?: string): MailMessage {
  return composeMail(config, {
    kind: 'verify_email',
    to,
    subject: `Confirm your email for ${config.APP_NAME}`,
    paragraphs: [`Someone, hopefully you, created an account for ${to} on ${config.APP_NAME}.`, 'Confirm this address with the password you chose to finish setting up your account.'],
    action: { label: 'Confirm email', url: gatewayLink(config, '/email/verify', returnTo === undefined ? { token } : { token, return_to: returnTo }) },
    footnote: 'The link works once, for 24 hours. If you did not create an account, ignore this email and do not confirm: nothing happens without it.',
  });
}

export function passwordResetMessage(config: Config, to: string, token: string): MailMessage {
  return composeMail(config, {
    kind: 'password_reset',
    to,
    subject: `Reset your ${config.APP_NAME} password`,
    paragraphs: [`Someone, hopefully you, asked to reset the password of the ${config.APP_NAME} account for ${to}.`, 'Choose a new password with the link below. Every device signed in to your account will be signed out.'],
    action: { label: 'Choose a new password', url: gatewayLink(config, '/password/reset', { token }) },
    footnote: 'The link works once, for 30 minutes. If you did not ask for it, ignore this email: your password stays as it is.',
  });
}

/** The mailed link to set a first password (`add_password` token). */
export function addPasswordMessage(config: Config, to: string, token: string, ttlMinutes: number): MailMessage {
  return composeMail(config, {
    kind: 'add_password',
    to,
    subject: `Set a password for your ${config.APP_NAME} account`,
    paragraphs: ['You asked to add a password to your account, so that you can also sign in with your email address.'],
    action: { label: 'Set a password', url: gatewayLink(config, '/account/password/add', { token }) },
    footnote: `The link works for ${ttlMinutes} minutes, once. If you did not ask for this, ignore this email.`,
  });
}

/** The mailed link that proves the new address (`change_email` token), sent TO the new address. */
export function changeEmailMessage(config: Config, to: string, token: string, ttlMinutes: number, currentEmail: string): MailMessage {
  return composeMail(config, {
    kind: 'change_email',
    to,
    subject: `Confirm your new email address for ${config.APP_NAME}`,
    paragraphs: [
      `The ${config.APP_NAME} account currently using ${currentEmail} asked to move to ${to}.`,
      `If that is your account, confirm the change: you will be asked for its password, unless you signed in to it in the last few minutes.`,
    ],
    action: { label: 'Confirm new address', url: gatewayLink(config, '/account/email/confirm', { token }) },
    footnote: `The link works for ${ttlMinutes} minutes, once. If this is not your account, ignore this email: nothing changes, and your address is not given to anyone.`,
  });
}

/** A one-time sign-in code (the code is in the subject so that it shows in a notification). */
export function emailCodeMessage(config: Config, to: string, code: string, ttlMinutes: number): MailMessage {
  return composeMail(config, {
    kind: 'email_code',
    to,
    subject: `${code} is your ${config.APP_NAME} sign-in code`,
    paragraphs: [`Your sign-in code is ${code}.`, `Enter it on the sign-in page within ${ttlMinutes} minutes. It works once.`],
    footnote: 'If you did not try to sign in, ignore this email: nobody can sign in without the code.',
  });
}

// --- Notices: telling the owner what happened ---------------------------------------------

/** To the owner of an existing account when someone registers with its address. */
export function alreadyRegisteredMessage(config: Config, to: string): MailMessage {
  return composeMail(config, {
    kind: 'register_existing',
    to,
    subject: `Someone tried to create an account with your email on ${config.APP_NAME}`,
    paragraphs: [
      `Someone tried to create a new ${config.APP_NAME} account for ${to}, but you already have one. Nothing was changed.`,
      `If it was you, sign in instead. Forgot your password? Choose a new one here: ${gatewayLink(config, '/password/forgot').href}`,
    ],
    action: { label: 'Sign in', url: gatewayLink(config, '/login') },
    footnote: 'If it was not you, you can ignore this email: your account is unchanged.',
  });
}

/** After a password reset through a mailed link (every device was signed out). */
export function passwordResetDoneMessage(config: Config, to: string): MailMessage {
  return composeMail(config, {
    kind: 'password_changed',
    to,
    subject: `Your ${config.APP_NAME} password was changed`,
    paragraphs: [`The password of your ${config.APP_NAME} account (${to}) was just reset, and every device was signed out.`],
    action: { label: 'Sign in', url: gatewayLink(config, '/login') },
    footnote: `If this was not you, someone can read your email: secure your mailbox, then choose a new password at once at ${gatewayLink(config, '/password/forgot').href}`,
  });
}

/**
 * A change to how the account is reached: a way in added or removed (authenticator app,
 * passkey, linked sign-in method, password), recovery codes remade, the address changed or
 * asked to change, the account deleted.
 */
export type AccountChange =
  | 'totp_added'
  | 'totp_removed'
  | 'passkey_added'
  | 'passkey_removed'
  | 'recovery_codes_regenerated'
  | 'admin_reset'
  | 'identity_linked'
  | 'identity_unlinked'
  | 'password_added'
  | 'password_changed'
  | 'email_change_requested'
  | 'email_changed'
  | 'account_deleted';

const SECURITY_TEXT: Record<AccountChange, { subject: (app: string) => string; sentence: (detail: string) => string }> = {
  totp_added: { subject: (app) => `${app}: An authenticator app was added`, sentence: () => 'An authenticator app was set up as a second factor for your account.' },
  totp_removed: { subject: (app) => `${app}: Your authenticator app was removed`, sentence: () => 'The authenticator app was removed from your account.' },
  passkey_added: { subject: (app) => `${app}: A passkey was added`, sentence: () => 'A new passkey was added to your account.' },
  passkey_removed: { subject: (app) => `${app}: A passkey was removed`, sentence: () => 'A passkey was removed from your account.' },
  recovery_codes_regenerated: { subject: (app) => `${app}: New recovery codes were made`, sentence: () => 'New recovery codes were made for your account; the old ones no longer work.' },
  admin_reset: {
    subject: (app) => `${app}: Your second factors were reset`,
    sentence: () => 'An administrator removed the second factors of your account (authenticator app, passkeys and recovery codes).',
  },
  identity_linked: {
    subject: (app) => `${app}: A sign-in method was added`,
    sentence: (provider) => `${provider} was linked to your account: it can now be used to sign in to it.`,
  },
  identity_unlinked: {
    subject: (app) => `${app}: A sign-in method was removed`,
    sentence: (provider) => `${provider} was unlinked from your account: it can no longer be used to sign in to it.`,
  },
  password_added: {
    subject: (app) => `A password was added to your ${app} account`,
    sentence: () => 'A password was just added to your account: you can now sign in with your email address and that password.',
  },
  password_changed: {
    subject: (app) => `Your ${app} password was changed`,
    sentence: () => 'The password of your account was just changed, and every other session of the account was signed out.',
  },
  email_change_requested: {
    subject: (app) => `${app}: A change of your email address was requested`,
    sentence: (to) => `Someone signed in to your account asked to move it to ${to}. Nothing changes unless the link mailed there is confirmed.`,
  },
  email_changed: {
    subject: (app) => `The email address of your ${app} account was changed`,
    sentence: (to) => `The email address of your account was changed to ${to}. Mail about the account now goes there, not here.`,
  },
  account_deleted: { subject: (app) => `Your ${app} account was deleted`, sentence: () => 'Your account was deleted, together with its sign-in methods and sessions.' },
};

/**
 * The notice of an account change, to the account's address. `detail` fills the sentence: the
 * provider's name for a linked or unlinked method, the new address for an email change.
 */
export function accountChangeMessage(config: Config, to: string, change: AccountChange, detail = ''): MailMessage {
  const text = SECURITY_TEXT[change];
  const gone = change === 'account_deleted';
  return composeMail(config, {
    kind: change,
    to,
    subject: text.subject(config.APP_NAME),
    paragraphs: [text.sentence(detail), `Account: ${to}.`],
    ...(gone ? {} : { action: { label: 'Review your account', url: gatewayLink(config, '/account') } }),
    footnote: gone
      ? 'If this was not you, contact the people who run this service at once.'
      : 'If this was not you, sign in and change your password at once, and review your sign-in methods and second factors.',
  });
}
