/**
 * Sends one message through the transport the configuration names (config/load.ts
 * `mailTransport`). Callers send only after the database work the message belongs to has
 * committed, and let a {@link MailUnavailableError} become a 503 `mail_unavailable`: the user
 * simply retries, and nothing was half-done.
 *
 * The transports are imported on first use: most requests never send mail, and worker-mailer
 * must not weigh on start-up.
 */
import type { Config } from '../config/schema';
import type { Env } from '../env';
import { log } from '../observability/log';
import { MailUnavailableError } from './errors';
import type { MailMessage, OutgoingMail } from './message';

/** A relay that neither accepts nor refuses within this is treated as down. */
export const MAIL_DEADLINE_MS = 10_000;

/** Whether this deployment can send mail at all (pages offer mail features only then). */
export function mailEnabled(config: Config): boolean {
  return config.mailTransport !== null;
}

/**
 * @throws MailUnavailableError when no transport is configured, or it fails or times out.
 * @example
 * await sendMail(c.env, c.get('config'), { kind: 'password_reset', to: user.email, ...composed });
 */
export async function sendMail(env: Env, config: Config, message: MailMessage): Promise<void> {
  const { kind, ...content } = message;
  const mail: OutgoingMail = { ...content, from: config.mailFrom };
  const transport = config.mailTransport;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${MAIL_DEADLINE_MS} ms`)), MAIL_DEADLINE_MS);
    });
    await Promise.race([deliver(env, config, mail), deadline]);
  } catch (e) {
    // The relay's own words go to the log (they name no token: links are in the body only).
    log.error('mail_failed', { kind, transport, error: e instanceof Error ? e.message : String(e) });
    throw new MailUnavailableError(e);
  } finally {
    clearTimeout(timer);
  }
  log.info('mail_sent', { kind, transport });
}

async function deliver(env: Env, config: Config, mail: OutgoingMail): Promise<void> {
  if (config.mailTransport === 'smtp' && config.SMTP_URL) {
    const { sendBySmtp } = await import('./smtp');
    return sendBySmtp(config.SMTP_URL, mail);
  }
  if (config.mailTransport === 'email-service' && env.EMAIL) {
    const { sendByEmailService } = await import('./email-service');
    return sendByEmailService(env.EMAIL, mail);
  }
  throw new Error('no mail transport is configured (SMTP_URL or an EMAIL send_email binding)');
}
