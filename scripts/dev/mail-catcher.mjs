// A local mail catcher for `npm run dev` (maildev: SMTP + a web inbox), so a developer sees
// every mail the gateway sends (verification, password reset, notices) with no account
// anywhere. The gateway is pointed at it with SMTP_URL (plain SMTP is allowed to loopback
// only). An SMTP_URL you set yourself (.dev.vars, --var) wins, and then no catcher starts.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HOST = '127.0.0.1';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `preferred` if it is free, else any free port: a taken default is no reason to fail. */
async function portNear(preferred) {
  const tryPort = (p) =>
    new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(p, HOST, () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
  return tryPort(preferred).catch(() => tryPort(0));
}

function smtpUrlAlreadySet(devVarsText, given) {
  return given.some((x) => String(x).startsWith('SMTP_URL:')) || /^\s*SMTP_URL\s*=/m.test(devVarsText);
}

/** Starts maildev on loopback; resolves `{ smtpPort, inboxUrl, stop }`. */
export async function startMailCatcher() {
  const { MailDev } = await import('maildev');
  const smtp = await portNear(Number(process.env.MAIL_CATCHER_SMTP_PORT || 1025));
  const web = await portNear(Number(process.env.MAIL_CATCHER_WEB_PORT || 1080));
  const maildev = new MailDev({ smtp, web, ip: HOST, webIp: HOST, silent: true });
  await maildev.start();
  return { smtpPort: smtp, inboxUrl: `http://${HOST}:${web}`, stop: () => maildev.stop() };
}

/** The `companions` entry for scripts/dev.mjs. */
export async function mailCatcherCompanion({ devVarsText = '', givenVars = [] } = {}) {
  const text = devVarsText || (existsSync(join(root, '.dev.vars')) ? readFileSync(join(root, '.dev.vars'), 'utf8') : '');
  if (smtpUrlAlreadySet(text, givenVars)) return { vars: {}, stop: async () => {}, links: [] };
  const { smtpPort, inboxUrl, stop } = await startMailCatcher();
  console.log(`[gatehouse] mail catcher: every mail the gateway sends lands in the inbox at ${inboxUrl}`);
  return { vars: { SMTP_URL: `smtp://${HOST}:${smtpPort}` }, stop, links: [{ label: 'mail inbox', url: inboxUrl, note: '(every mail the gateway sends; JSON at /api/email)' }] };
}
