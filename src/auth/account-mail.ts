/**
 * The messages of email verification and password reset, composed with mail/compose.ts: plain
 * text plus simple HTML, named for APP_NAME, every link built from PUBLIC_URL (`gatewayLink`).
 * Tokens appear only in a message's link, never in a log line (the mail layer logs the kind).
 */
import type { Config } from '../config/schema';
import { composeMail, gatewayLink } from '../mail/compose';
import type { MailMessage } from '../mail/message';

export const VERIFY_EMAIL_TTL_S = 24 * 3600;
export const PASSWORD_RESET_TTL_S = 30 * 60;

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

export function passwordChangedMessage(config: Config, to: string): MailMessage {
  return composeMail(config, {
    kind: 'password_changed',
    to,
    subject: `Your ${config.APP_NAME} password was changed`,
    paragraphs: [`The password of your ${config.APP_NAME} account (${to}) was just reset, and every device was signed out.`],
    action: { label: 'Sign in', url: gatewayLink(config, '/login') },
    footnote: `If this was not you, someone can read your email: secure your mailbox, then choose a new password at once at ${gatewayLink(config, '/password/forgot').href}`,
  });
}
