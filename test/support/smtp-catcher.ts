/**
 * A real SMTP server for the tests (smtp-server, parsed with mailparser): the gateway's
 * worker-mailer client talks SMTP to it over a real socket, exactly as to a relay.
 *
 * - Worker tests reach it through the worker project's global setup
 *   (test/worker/support/global-setup-mail.ts), which also serves its inbox over HTTP.
 * - E2E tests start one per file and pass `smtpUrl` to the gateway as `SMTP_URL`.
 *
 * Recipients can be made to fail (`failFor`) to test what a relay outage does.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface CaughtMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** Every http(s) URL in the plain-text part, in order. */
  links: string[];
  /** The raw header block, for tests that check what a message does not contain. */
  headers: Record<string, string>;
  /** Order of arrival, starting at 1. */
  seq: number;
}

export interface SmtpCatcher {
  port: number;
  /** `smtp://user:password@127.0.0.1:port` (loopback: plain SMTP is allowed there). */
  smtpUrl: string;
  messages: CaughtMail[];
  mailFor(to: string): CaughtMail[];
  /** Resolves with the `count`-th message to `to` (default the first), waiting up to 10 s. */
  waitForMail(to: string, count?: number): Promise<CaughtMail>;
  /** From now on, RCPT TO this address is refused with 451 (a relay that cannot take it). */
  failFor(to: string): void;
  recover(to: string): void;
  stop(): Promise<void>;
}

const USER = 'gatehouse';
const PASSWORD = 'catcher-password';

export async function startSmtpCatcher(): Promise<SmtpCatcher> {
  const messages: CaughtMail[] = [];
  const failing = new Set<string>();
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === USER && auth.password === PASSWORD) callback(null, { user: USER });
      else callback(Object.assign(new Error('Invalid credentials'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, callback) {
      if (failing.has(address.address.toLowerCase())) {
        callback(Object.assign(new Error('Mailbox temporarily unavailable'), { responseCode: 451 }));
      } else callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const text = parsed.text ?? '';
          const headers: Record<string, string> = {};
          for (const line of parsed.headerLines) headers[line.key] = line.line;
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
            subject: parsed.subject ?? '',
            text,
            html: typeof parsed.html === 'string' ? parsed.html : '',
            links: text.match(/https?:\/\/[^\s<>"]+/g) ?? [],
            headers,
            seq: messages.length + 1,
          });
          for (const wake of waiters.splice(0)) wake();
          callback();
        })
        .catch((e: unknown) => callback(e instanceof Error ? e : new Error(String(e))));
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  const mailFor = (to: string) => messages.filter((m) => m.to.includes(to.toLowerCase()));
  return {
    port,
    smtpUrl: `smtp://${USER}:${PASSWORD}@127.0.0.1:${port}`,
    messages,
    mailFor,
    async waitForMail(to, count = 1) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const found = mailFor(to)[count - 1];
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no mail #${count} to ${to} within 10 s (have ${mailFor(to).length})`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 250);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    failFor: (to) => void failing.add(to.toLowerCase()),
    recover: (to) => void failing.delete(to.toLowerCase()),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The catcher's inbox over HTTP, for tests that run inside workerd (they cannot share memory
 * with Node): `GET /messages?to=` lists a recipient's mail as JSON; `POST /fail?to=` and
 * `POST /recover?to=` switch a recipient's failure on and off.
 */
export async function serveInbox(catcher: SmtpCatcher): Promise<{ url: string; stop: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://inbox');
    const to = url.searchParams.get('to') ?? '';
    res.setHeader('content-type', 'application/json');
    if (req.method === 'GET' && url.pathname === '/messages') return void res.end(JSON.stringify(catcher.mailFor(to)));
    if (req.method === 'POST' && (url.pathname === '/fail' || url.pathname === '/recover')) {
      if (url.pathname === '/fail') catcher.failFor(to);
      else catcher.recover(to);
      return void res.end(JSON.stringify({ ok: true }));
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
