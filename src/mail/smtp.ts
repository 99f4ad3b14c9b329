/**
 * SMTP to any relay over a Workers TCP socket (`cloudflare:sockets`), through worker-mailer:
 * a maintained client that runs in workerd. One connection per message: account mail is rare
 * and a kept-open connection would outlive the request that opened it.
 */
import { LogLevel, WorkerMailer } from 'worker-mailer';
import type { SmtpSettings } from '../config/mail-settings';
import type { OutgoingMail } from './message';

/** Per read and per connect; the caller's overall deadline (send.ts) bounds the whole exchange. */
const SOCKET_TIMEOUT_MS = 5_000;

export async function sendBySmtp(smtp: SmtpSettings, mail: OutgoingMail): Promise<void> {
  await WorkerMailer.send(
    {
      host: smtp.host,
      port: smtp.port,
      secure: smtp.tls === 'implicit',
      // STARTTLS in worker-mailer is opportunistic (used only when offered), so it is never relied
      // on: config/mail-settings.ts allows plain smtp:// to loopback only.
      startTls: false,
      credentials: smtp.username !== undefined && smtp.password !== undefined ? { username: smtp.username, password: smtp.password } : undefined,
      authType: ['plain', 'login'],
      // Its own log lines name the relay's replies; ours (send.ts) say what the operator needs.
      logLevel: LogLevel.NONE,
      socketTimeoutMs: SOCKET_TIMEOUT_MS,
      responseTimeoutMs: SOCKET_TIMEOUT_MS,
    },
    { from: mail.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html },
  );
}
