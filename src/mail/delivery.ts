/**
 * When the gateway's mail goes out, and what a failure means: one rule for every message
 * (messages.ts says what they say).
 *
 * - {@link sendNow}, awaited before the answer: a link a signed-in user asked for and is
 *   waiting for (add a password, confirm a new address, an admin's reset link for a user). If
 *   the relay fails, the caller revokes the link and the request answers 503
 *   `mail_unavailable`, so the user retries at once instead of waiting for a mail that will
 *   never come. Only where the answer may depend on the outcome: it reveals nothing the asker
 *   does not already know.
 * - {@link sendInBackground}: everything else, after the answer, through `waitUntil`; a failure
 *   is logged (`mail_failed` by send.ts, plus the kind here) and never reaches the answer.
 *   - Mail to an address someone typed (a sign-in code, a password reset, a verification link
 *     and "someone tried to register" on registration or resend): the answer and its timing must
 *     be the same whether or not the address has an account, so no work that depends on the
 *     account (not even its D1 writes) happens before the answer. The person asks again if no
 *     mail arrives.
 *   - Notices of a change (a way in added or removed, password or address changed, account
 *     deleted): the change has committed and is what the user asked for; a relay that is down
 *     must neither turn it into an error (the user would retry a change that happened) nor
 *     delay it. The audit log records the change either way.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { log } from '../observability/log';
import { accountChangeMessage, type AccountChange } from './messages';
import type { MailMessage } from './message';
import { mailEnabled, sendMail } from './send';

/**
 * Sends a message as part of the caller's work: before the answer for a link the user is
 * waiting for, or inside {@link sendInBackground}'s work for one that issues a link first.
 * @throws MailUnavailableError when the transport fails (the caller revokes the link first).
 */
export function sendNow(c: Context<AppEnv>, message: MailMessage): Promise<void> {
  return sendMail(c.env, c.get('config'), message);
}

/**
 * Runs mail work after the answer: `work` may issue a link and send it, or just send. Never
 * throws; a failure is logged with `kind`.
 */
export function sendInBackground(c: Context<AppEnv>, kind: string, work: () => Promise<unknown>): void {
  const logged = Promise.resolve()
    .then(work)
    .catch((e: unknown) => {
      log.warn('mail_background_failed', { kind, error: e instanceof Error ? e.message : String(e) });
    });
  try {
    c.executionCtx.waitUntil(logged);
  } catch {
    // No execution context (not a Worker request): the promise still runs on its own.
  }
}

/** Sends a notice after the answer (nothing when this gateway cannot send mail); true if one was queued. */
export function sendNotice(c: Context<AppEnv>, message: MailMessage): boolean {
  const config = c.get('config');
  if (!mailEnabled(config)) return false;
  sendInBackground(c, message.kind, () => sendMail(c.env, config, message));
  return true;
}

/** Tells the owner of an account about a committed change ({@link sendNotice}). */
export function sendAccountNotice(c: Context<AppEnv>, user: { email: string }, change: AccountChange, detail = ''): boolean {
  return sendNotice(c, accountChangeMessage(c.get('config'), user.email, change, detail));
}
