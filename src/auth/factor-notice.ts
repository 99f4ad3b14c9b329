/**
 * Notice mails when a user's second factors change (issue 12): an authenticator app or a
 * passkey added or removed, recovery codes regenerated, an admin's reset. Sent only when this
 * gateway can send mail (`mailEnabled`), and only after the change is committed in D1.
 *
 * Sent in `waitUntil`, not awaited: the change is already committed and is what the user asked
 * for; a relay that is down must neither turn it into a 503 (the user would retry a change that
 * happened) nor undo it. A failure is logged (mail_failed by sendMail, factor_notice_failed
 * here) for the operator, who can see the change itself in the audit log.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { composeMail, gatewayLink } from '../mail/compose';
import { mailEnabled, sendMail } from '../mail/send';
import { log } from '../observability/log';
import type { User } from '../storage/users';

export type FactorChange = 'totp_added' | 'totp_removed' | 'passkey_added' | 'passkey_removed' | 'recovery_codes_regenerated' | 'admin_reset';

const WHAT: Record<FactorChange, { subject: string; sentence: string }> = {
  totp_added: { subject: 'An authenticator app was added', sentence: 'An authenticator app was set up as a second factor for your account.' },
  totp_removed: { subject: 'Your authenticator app was removed', sentence: 'The authenticator app was removed from your account.' },
  passkey_added: { subject: 'A passkey was added', sentence: 'A new passkey was added to your account.' },
  passkey_removed: { subject: 'A passkey was removed', sentence: 'A passkey was removed from your account.' },
  recovery_codes_regenerated: { subject: 'New recovery codes were made', sentence: 'New recovery codes were made for your account; the old ones no longer work.' },
  admin_reset: { subject: 'Your second factors were reset', sentence: 'An administrator removed the second factors of your account (authenticator app, passkeys and recovery codes).' },
};

/** Queues the notice for `change` to `user` (nothing when mail is off); never throws. */
export function sendFactorNotice(c: Context<AppEnv>, user: Pick<User, 'id' | 'email'>, change: FactorChange): void {
  const config = c.get('config');
  if (!mailEnabled(config)) return;
  const what = WHAT[change];
  const message = composeMail(config, {
    kind: `factor_${change}`,
    to: user.email,
    subject: `${config.APP_NAME}: ${what.subject}`,
    paragraphs: [what.sentence, `Account: ${user.email}.`],
    action: { label: 'Review your account', url: gatewayLink(config, '/account') },
    footnote: 'If this was not you, sign in and change your password at once, and review your second factors.',
  });
  const send = sendMail(c.env, config, message).catch((e: unknown) => log.error('factor_notice_failed', { change, user_id: user.id, error: e instanceof Error ? e.message : String(e) }));
  c.executionCtx.waitUntil(send);
}
