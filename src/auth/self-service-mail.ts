/**
 * The mail of account self-service: links (add a password, confirm a new address) and notices
 * (password changed, email changed, account deleted). Links are sent with `sendMail`, whose
 * failure is a 503 the caller lets through (the link's token is revoked first, so nothing is
 * half-done and a retry issues a new one). A notice is sent after the change it reports has
 * committed: a failure then cannot undo the change, so it is logged and the answer says the
 * notice was not sent (`notice_sent: false`) instead of a 503 that would invite a retry of a
 * change that already happened.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { composeMail, gatewayLink } from '../mail/compose';
import { MailUnavailableError } from '../mail/errors';
import { mailEnabled, sendMail } from '../mail/send';
import type { MailMessage } from '../mail/message';

export type NoticeKind = 'password_changed' | 'password_added' | 'email_changed' | 'account_deleted';

const NOTICE_TEXT: Record<NoticeKind, { subject: (app: string) => string; paragraphs: (detail: string) => string[] }> = {
  password_changed: {
    subject: (app) => `Your ${app} password was changed`,
    paragraphs: () => ['The password of your account was just changed, and every other session of the account was signed out.'],
  },
  password_added: {
    subject: (app) => `A password was added to your ${app} account`,
    paragraphs: () => ['A password was just added to your account: you can now sign in with your email address and that password.'],
  },
  email_changed: {
    subject: (app) => `The email address of your ${app} account was changed`,
    paragraphs: (detail) => [`The email address of your account was changed to ${detail}. Mail about the account now goes there, not here.`],
  },
  account_deleted: {
    subject: (app) => `Your ${app} account was deleted`,
    paragraphs: () => ['Your account was deleted, together with its sign-in methods and sessions.'],
  },
};

/**
 * Sends a notice after a committed change; true if it was handed to the transport, false when
 * mail is off or the transport failed (logged by sendMail; the change stands either way).
 */
export async function sendNotice(c: Context<AppEnv>, kind: NoticeKind, to: string, detail = ''): Promise<boolean> {
  const config = c.get('config');
  if (!mailEnabled(config)) return false;
  const text = NOTICE_TEXT[kind];
  const message = composeMail(config, {
    kind,
    to,
    subject: text.subject(config.APP_NAME),
    paragraphs: text.paragraphs(detail),
    footnote: 'If this was not you, contact the people who run this service at once.',
  });
  try {
    await sendMail(c.env, config, message);
    return true;
  } catch (e) {
    if (e instanceof MailUnavailableError) return false;
    throw e;
  }
}

/** The mailed link to set a first password (`add_password` token). */
export function addPasswordMail(c: Context<AppEnv>, to: string, token: string, ttlMinutes: number): MailMessage {
  const config = c.get('config');
  return composeMail(config, {
    kind: 'add_password',
    to,
    subject: `Set a password for your ${config.APP_NAME} account`,
    paragraphs: ['You asked to add a password to your account, so that you can also sign in with your email address.'],
    action: { label: 'Set a password', url: gatewayLink(config, '/account/password/add', { token }) },
    footnote: `The link works for ${ttlMinutes} minutes, once. If you did not ask for this, ignore this email.`,
  });
}

/**
 * The mailed link that proves the new address (`change_email` token), sent TO the new address.
 * It names the account's current address: whoever reads it must know which account would take
 * their address, and confirming takes that account's password or a recent sign-in to it.
 */
export function changeEmailMail(c: Context<AppEnv>, to: string, token: string, ttlMinutes: number, currentEmail: string): MailMessage {
  const config = c.get('config');
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
