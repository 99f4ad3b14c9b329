/**
 * Mail in worker tests: an env whose `SMTP_URL` points at the real SMTP server of the global
 * setup, and that server's inbox. Use a fresh address per test (`uniqueEmail`), since all
 * files share one server.
 */
import { inject } from 'vitest';
import type { CaughtMail } from '../../support/smtp-catcher';
import { makeEnv, type TestEnv } from './helpers';

export type { CaughtMail };

const { smtpUrl, inboxUrl } = inject('mail');

/** An env with mail on (SMTP to the test server), plus any other overrides. */
export function mailEnv(overrides: Record<string, unknown> = {}): TestEnv {
  return makeEnv({ SMTP_URL: smtpUrl, ...overrides });
}

let counter = 0;
/** An address no other test uses. */
export function uniqueEmail(label = 'user'): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${crypto.randomUUID().slice(0, 8)}@example.com`;
}

/** Every message the server has received for `to`, oldest first. */
export async function mailFor(to: string): Promise<CaughtMail[]> {
  const response = await fetch(`${inboxUrl}/messages?to=${encodeURIComponent(to)}`);
  return response.json();
}

/** The `count`-th message to `to` (default the first); fails the test if it is not there. */
export async function lastMailFor(to: string): Promise<CaughtMail> {
  const all = await mailFor(to);
  const last = all.at(-1);
  if (!last) throw new Error(`no mail to ${to}`);
  return last;
}

/** Makes the SMTP server refuse mail to `to` (451) until {@link recoverMail}. */
export async function failMailFor(to: string): Promise<void> {
  await fetch(`${inboxUrl}/fail?to=${encodeURIComponent(to)}`, { method: 'POST' });
}

export async function recoverMail(to: string): Promise<void> {
  await fetch(`${inboxUrl}/recover?to=${encodeURIComponent(to)}`, { method: 'POST' });
}
