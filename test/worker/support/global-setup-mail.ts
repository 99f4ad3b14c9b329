/**
 * Global setup of the worker project (runs in Node): one real SMTP server for every test file,
 * and its inbox over HTTP. Tests read both through `inject('mail')` (test/worker/support/mail.ts).
 */
import type { TestProject } from 'vitest/node';
import { serveInbox, startSmtpCatcher } from '../../support/smtp-catcher';

export default async function setup(project: TestProject) {
  const catcher = await startSmtpCatcher();
  const inbox = await serveInbox(catcher);
  project.provide('mail', { smtpUrl: catcher.smtpUrl, inboxUrl: inbox.url });
  return async () => {
    await inbox.stop();
    await catcher.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    mail: { smtpUrl: string; inboxUrl: string };
  }
}
