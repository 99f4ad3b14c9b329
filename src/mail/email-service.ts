/** Cloudflare Email Service: the Worker's `EMAIL` send_email binding. */
import type { OutgoingMail } from './message';

export async function sendByEmailService(binding: SendEmail, mail: OutgoingMail): Promise<void> {
  await binding.send({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
}
