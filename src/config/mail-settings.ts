/**
 * Parsing of the mail settings: `SMTP_URL` (a secret) and `EMAIL_FROM`. Which transport is on
 * follows from what is configured (load.ts): `SMTP_URL` set, SMTP; else an `EMAIL` send_email
 * binding, Cloudflare Email Service; else none, and the features that need mail are off.
 */
import * as v from 'valibot';

export interface SmtpSettings {
  host: string;
  port: number;
  /** `implicit`: TLS from the first byte (smtps://). `none`: plain text, loopback only. */
  tls: 'implicit' | 'none';
  username?: string;
  password?: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * `smtps://user:pass@host:465` anywhere; `smtp://host:port` (plain text) only to a loopback
 * host, i.e. a mail catcher in development. A relay elsewhere must be smtps://: the SMTP
 * client's STARTTLS (worker-mailer) is opportunistic, so a relay reached over smtp:// could be
 * talked down to plain text by anyone on the path and would then see the password and mail.
 */
export function parseSmtpUrl(input: string): SmtpSettings | string {
  if (!URL.canParse(input)) return 'must be a URL such as smtps://user:password@smtp.example.com:465';
  const url = new URL(input);
  if (url.protocol !== 'smtps:' && url.protocol !== 'smtp:') return 'must start with smtps:// (or smtp:// for a loopback mail catcher)';
  if (!url.hostname) return 'must name a host';
  if (url.protocol === 'smtp:' && !LOOPBACK.has(url.hostname)) {
    return 'must use smtps:// (implicit TLS, usually port 465) for a relay that is not on loopback: plain smtp:// could be downgraded to clear text';
  }
  const port = url.port ? Number(url.port) : url.protocol === 'smtps:' ? 465 : 25;
  // Workers may not open outbound connections to port 25.
  if (port === 25) return 'must name a port other than 25 (Workers cannot connect to port 25; relays accept 465)';
  if ((url.username === '') !== (url.password === '')) return 'must give both a user name and a password, or neither';
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = url.username ? decodeURIComponent(url.username) : undefined;
    password = url.password ? decodeURIComponent(url.password) : undefined;
  } catch {
    return 'has a user name or password that is not valid percent-encoding';
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port, tls: url.protocol === 'smtps:' ? 'implicit' : 'none', username, password };
}

export interface Sender {
  email: string;
  name?: string;
}

const ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

/** `EMAIL_FROM`: `no-reply@example.com` or `Example <no-reply@example.com>` (ASCII, one line). */
export function parseSender(input: string): Sender | string {
  const text = input.trim();
  if (/[\r\n]/.test(text)) return 'must be one line';
  const named = /^(.*?)\s*<([^<>]+)>$/.exec(text);
  const email = (named ? named[2]! : text).trim();
  const name = named ? named[1]!.trim().replace(/^"(.*)"$/, '$1') : undefined;
  if (!ADDRESS.test(email) || email.length > 254) return 'must be an email address such as no-reply@example.com, optionally as "Name <address>"';
  if (name !== undefined && /["\\<>]/.test(name)) return 'must not have quotes, backslashes or angle brackets in the name';
  return name ? { email, name } : { email };
}

/** An optional setting parsed by `parse`; empty means "not set"; a string result is the error. */
const optionalParsed = <T>(parse: (s: string) => T | string) =>
  v.pipe(
    v.optional(v.string()),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const text = dataset.value?.trim();
      if (!text) return undefined;
      const result = parse(text);
      if (typeof result === 'string') {
        addIssue({ message: result });
        return NEVER;
      }
      return result;
    }),
  );

export const mailSettings = {
  SMTP_URL: optionalParsed(parseSmtpUrl),
  EMAIL_FROM: optionalParsed(parseSender),
};
