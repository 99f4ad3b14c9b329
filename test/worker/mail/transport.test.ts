/**
 * The mail layer (src/mail/): which transport the settings turn on, SMTP to a real server
 * (test/support/smtp-catcher.ts) and Miniflare's local Email Service, and failures that must
 * become a 503 `mail_unavailable`, never a 500 or a silent loss.
 */
import { env as baseEnv } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load';
import { parseSender, parseSmtpUrl } from '../../../src/config/mail-settings';
import type { Config } from '../../../src/config/schema';
import type { Env } from '../../../src/env';
import { composeMail, gatewayLink } from '../../../src/mail/compose';
import { MailUnavailableError } from '../../../src/mail/errors';
import { mailEnabled, sendMail } from '../../../src/mail/send';
import { toApiError } from '../../../src/http/errors';
import { errorResponse } from '../../../src/http/errors';
import { makeEnv } from '../support/helpers';
import { failMailFor, lastMailFor, mailEnv, mailFor, recoverMail, uniqueEmail } from '../support/mail';

function configOf(env: object): Config {
  const result = loadConfig(env);
  if (!result.ok) throw result.error;
  return result.config;
}

const message = (to: string) =>
  composeMail(configOf(mailEnv()), {
    kind: 'test_message',
    to,
    subject: 'Hello <there>',
    paragraphs: ['First line & more.', 'Second <b>line</b>.'],
    action: { label: 'Do it', url: new URL('https://gate.example.com/auth/x?token=abc') },
    footnote: 'If this was not you, ignore this email.',
  });

describe('settings', () => {
  it('SMTP_URL: smtps anywhere, plain smtp only to loopback, never port 25', () => {
    expect(parseSmtpUrl('smtps://u:p%40ss@smtp.example.com')).toEqual({ host: 'smtp.example.com', port: 465, tls: 'implicit', username: 'u', password: 'p@ss' });
    expect(parseSmtpUrl('smtp://127.0.0.1:1025')).toEqual({ host: '127.0.0.1', port: 1025, tls: 'none', username: undefined, password: undefined });
    expect(parseSmtpUrl('smtp://localhost:2525')).toMatchObject({ host: 'localhost', tls: 'none' });
    expect(parseSmtpUrl('smtp://smtp.example.com:587')).toMatch(/must use smtps:\/\//);
    expect(parseSmtpUrl('smtps://smtp.example.com:25')).toMatch(/port other than 25/);
    expect(parseSmtpUrl('https://smtp.example.com')).toMatch(/must start with smtps:\/\//);
    expect(parseSmtpUrl('smtps://user@smtp.example.com')).toMatch(/both a user name and a password/);
    expect(parseSmtpUrl('not a url')).toMatch(/must be a URL/);
  });

  it('EMAIL_FROM: an address or "Name <address>", one line', () => {
    expect(parseSender('no-reply@example.com')).toEqual({ email: 'no-reply@example.com' });
    expect(parseSender('Acme Login <login@acme.test>')).toEqual({ email: 'login@acme.test', name: 'Acme Login' });
    expect(parseSender('"Acme" <login@acme.test>')).toEqual({ email: 'login@acme.test', name: 'Acme' });
    expect(parseSender('Acme <login@acme.test>\r\nBcc: x@evil.test')).toMatch(/one line/);
    expect(parseSender('nobody')).toMatch(/must be an email address/);
  });

  it('a bad SMTP_URL or EMAIL_FROM stops the config with the setting named, never its value', () => {
    const bad = loadConfig(makeEnv({ SMTP_URL: 'smtp://user:secret-pass@relay.example.com:587' }));
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.error.setting).toBe('SMTP_URL');
    expect(bad.error.message).not.toContain('secret-pass');
    const from = loadConfig(makeEnv({ EMAIL_FROM: 'nobody' }));
    expect(from.ok).toBe(false);
    if (from.ok) return;
    expect(from.error.setting).toBe('EMAIL_FROM');
  });

  it('the transport follows from what is configured: SMTP_URL, else an EMAIL binding, else none', () => {
    expect(configOf(makeEnv()).mailTransport).toBeNull();
    expect(mailEnabled(configOf(makeEnv()))).toBe(false);
    expect(configOf(mailEnv()).mailTransport).toBe('smtp');
    expect(configOf(makeEnv({ EMAIL: baseEnv.TEST_EMAIL_SERVICE })).mailTransport).toBe('email-service');
    expect(configOf(mailEnv({ EMAIL: baseEnv.TEST_EMAIL_SERVICE })).mailTransport).toBe('smtp');
  });

  it('the sender defaults to no-reply at PUBLIC_URL\'s host, named APP_NAME', () => {
    expect(configOf(makeEnv({ APP_NAME: 'Acme' })).mailFrom).toEqual({ email: 'no-reply@gate.example.com', name: 'Acme' });
    expect(configOf(makeEnv({ EMAIL_FROM: 'Acme Login <login@acme.test>' })).mailFrom).toEqual({ email: 'login@acme.test', name: 'Acme Login' });
  });
});

describe('composing', () => {
  it('text and HTML carry the same content; HTML escapes every value; links come from PUBLIC_URL', () => {
    const config = configOf(mailEnv({ APP_NAME: 'Acme <Corp>' }));
    const link = gatewayLink(config, '/password/reset', { token: 'a b&c' });
    expect(link.href).toBe('https://gate.example.com/auth/password/reset?token=a+b%26c');
    const m = composeMail(config, { kind: 'k', to: 'x@example.com', subject: 'S', paragraphs: ['<script>x</script>'], action: { label: 'Go', url: link } });
    expect(m.text).toContain('<script>x</script>');
    expect(m.text).toContain(link.href);
    expect(m.text).toContain('Acme <Corp>');
    expect(m.html).not.toContain('<script>');
    expect(m.html).toContain('&#60;script&#62;x&#60;/script&#62;');
    expect(m.html).toContain('Acme &#60;Corp&#62;');
    expect(m.html).toContain(`href="https://gate.example.com/auth/password/reset?token=a+b%26c"`);
    expect(m.html).not.toMatch(/<img|<script|https?:\/\/(?!gate\.example\.com)/);
  });
});

describe('SMTP to a real server', () => {
  it('delivers text and HTML, from EMAIL_FROM, authenticated with the URL\'s credentials', async () => {
    const to = uniqueEmail('smtp');
    const env = mailEnv({ EMAIL_FROM: 'Acme Login <login@acme.test>' });
    await sendMail(env as unknown as Env, configOf(env), message(to));
    const mail = await lastMailFor(to);
    expect(mail.from).toBe('login@acme.test');
    expect(mail.subject).toBe('Hello <there>');
    expect(mail.text).toContain('First line & more.');
    expect(mail.links).toEqual(['https://gate.example.com/auth/x?token=abc']);
    expect(mail.html).toContain('Second &#60;b&#62;line&#60;/b&#62;.');
    expect(mail.headers.from).toContain('Acme Login');
  });

  it('a relay that refuses the message: MailUnavailableError, mapped to 503 mail_unavailable with Retry-After', async () => {
    const to = uniqueEmail('refused');
    const env = mailEnv();
    await failMailFor(to);
    try {
      await expect(sendMail(env as unknown as Env, configOf(env), message(to))).rejects.toBeInstanceOf(MailUnavailableError);
    } finally {
      await recoverMail(to);
    }
    expect(await mailFor(to)).toEqual([]);
    const response = errorResponse(toApiError(new MailUnavailableError(new Error('451 from relay.internal'))));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('30');
    const body = await response.json<{ error: string; error_description: string }>();
    expect(body.error).toBe('mail_unavailable');
    expect(body.error_description).not.toContain('relay.internal');
  });

  it('wrong credentials and a relay that is not listening are failures too, not a 500', async () => {
    const to = uniqueEmail('auth');
    const wrongPassword = mailEnv();
    const url = new URL(String(wrongPassword.SMTP_URL));
    url.password = 'wrong';
    const env1 = makeEnv({ SMTP_URL: url.href });
    await expect(sendMail(env1 as unknown as Env, configOf(env1), message(to))).rejects.toBeInstanceOf(MailUnavailableError);
    const env2 = makeEnv({ SMTP_URL: 'smtp://127.0.0.1:9' });
    await expect(sendMail(env2 as unknown as Env, configOf(env2), message(to))).rejects.toBeInstanceOf(MailUnavailableError);
    expect(await mailFor(to)).toEqual([]);
  });

  it('no transport: sending is refused as unavailable', async () => {
    const env = makeEnv();
    await expect(sendMail(env as unknown as Env, configOf(env), message(uniqueEmail()))).rejects.toBeInstanceOf(MailUnavailableError);
  });
});

describe('Cloudflare Email Service (Miniflare\'s local send_email binding)', () => {
  it('sends through the EMAIL binding', async () => {
    const env = makeEnv({ EMAIL: baseEnv.TEST_EMAIL_SERVICE });
    await expect(sendMail(env as unknown as Env, configOf(env), message('someone@example.com'))).resolves.toBeUndefined();
  });

  it('a binding that refuses the recipient: MailUnavailableError', async () => {
    const env = makeEnv({ EMAIL: baseEnv.TEST_EMAIL_SERVICE_RESTRICTED });
    await expect(sendMail(env as unknown as Env, configOf(env), message('someone@example.com'))).rejects.toBeInstanceOf(MailUnavailableError);
  });
});

describe('one home for what mail says and when it goes', () => {
  const sources = import.meta.glob('../../../src/**/*.{ts,tsx}', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  const path = (key: string) => key.replace(/^\.\.\/\.\.\/\.\.\//, '');

  it('every message is composed in mail/messages.ts, and only mail/ calls the transport', () => {
    const composing = Object.entries(sources)
      .filter(([, text]) => /\bcomposeMail\(/.test(text))
      .map(([key]) => path(key));
    expect(composing.sort()).toEqual(['src/mail/compose.ts', 'src/mail/messages.ts']);
    const sending = Object.entries(sources)
      .filter(([key, text]) => !path(key).startsWith('src/mail/') && /\bsendMail\(/.test(text))
      .map(([key]) => path(key));
    expect(sending).toEqual([]);
  });
});
