/**
 * Sign-in by email code (EMAIL_LOGIN=enabled): one-time, 10 minutes, 5 guesses, stored hashed,
 * the same answer for unknown addresses. D1 and mail asserted.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sha256 } from '../../../src/util/random';
import { call, countRows, GOOD_PASSWORD, setCookies, type TestEnv } from '../support/helpers';
import { answerWhileWritesHeld } from '../support/held-writes';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';

// Registration here is set-up, not the subject: it signs in at once (EMAIL_VERIFICATION=off;
// the verification flow has its own tests in email-verification.test.ts).
const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', EMAIL_LOGIN: 'enabled' });

afterEach(() => {
  vi.useRealTimers();
});

async function register(email = uniqueEmail('code')) {
  const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD }, env: e });
  expect(r.status).toBe(201);
  return ((await r.json()) as { user: { id: string } }).user.id;
}

const requestCode = (email: string, testEnv = e) => call('/auth/login/email-code', { json: { email }, env: testEnv });
const verify = (email: string, code: string, testEnv = e) => call('/auth/login/email-code/verify', { json: { email, code }, env: testEnv });
/** The account back-off out of the way, to see the per-code limit alone. */
const noBackoff: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', EMAIL_LOGIN: 'enabled', LOGIN_BACKOFF_AFTER: '50' });

async function codeFor(email: string, nth = 1): Promise<string> {
  const mails = await mailFor(email);
  expect(mails).toHaveLength(nth);
  return /^(\d{8}) is your/.exec(mails[nth - 1]!.subject)![1]!;
}

describe('sign-in by email code', () => {
  it('does the same work before answering for a known and an unknown address: no D1 write, no mail', async () => {
    const known = uniqueEmail('known-timing');
    await register(known);
    const unknown = uniqueEmail('nobody-timing');
    const a = await answerWhileWritesHeld(e, '/auth/login/email-code', { email: known });
    const b = await answerWhileWritesHeld(e, '/auth/login/email-code', { email: unknown });
    expect(a.waitedFor, 'the known address waited for these D1 writes before its answer').toEqual([]);
    expect(b.waitedFor).toEqual([]);
    expect(a.response!.status).toBe(202);
    expect(b.response!.status).toBe(a.response!.status);
    expect(await b.response!.text()).toBe(await a.response!.text());
    // The work happened after the answer: a code for the account, nothing for the stranger.
    expect(await countRows('email_codes', 'email = ?', known)).toBe(1);
    expect(await codeFor(known)).toMatch(/^\d{8}$/);
    expect(await countRows('email_codes', 'email = ?', unknown)).toBe(0);
    expect(await mailFor(unknown)).toEqual([]);
  });

  it('answers the same for known and unknown addresses; mails a code only to an account; the code signs in once', async () => {
    const known = uniqueEmail('known');
    const id = await register(known);
    const unknown = uniqueEmail('nobody');
    const a = await requestCode(known);
    const b = await requestCode(unknown);
    expect(a.status).toBe(202);
    expect(b.status).toBe(a.status);
    expect(await b.text()).toBe(await a.text());
    expect(await mailFor(unknown)).toEqual([]);
    expect(await countRows('email_codes', 'email = ?', unknown)).toBe(0);

    const code = await codeFor(known);
    const stored = await env.DB.prepare('SELECT code_hash FROM email_codes WHERE email = ?').bind(known).first<{ code_hash: string }>();
    expect(stored?.code_hash).toBe(await sha256(`email-code:${known}:${code}`));
    expect(stored?.code_hash).not.toContain(code);

    const ok = await verify(known, code);
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(await ok.json()).toMatchObject({ token_type: 'Bearer', user: { id } });
    expect(await countRows('email_codes', 'email = ?', known)).toBe(0);
    expect(await countRows('sessions', "user_id = ? AND provider = 'email_code'", id)).toBe(1);

    const again = await verify(known, code);
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: 'invalid_credentials' });
    const stranger = await verify(unknown, '12345678');
    expect(stranger.status).toBe(401);
    expect(await stranger.json()).toMatchObject({ error: 'invalid_credentials', error_description: 'The code is wrong, has expired or was already used. Request a new one if needed.' });
  });

  it('kills the code after 5 wrong guesses: the right one is refused then', async () => {
    const email = uniqueEmail('guess');
    await register(email);
    await requestCode(email);
    const code = await codeFor(email);
    const wrong = code === '00000000' ? '00000001' : '00000000';
    for (let i = 0; i < 5; i += 1) expect((await verify(email, wrong, noBackoff)).status).toBe(401);
    expect(await countRows('email_codes', 'email = ? AND attempts = 5', email)).toBe(1);
    const right = await verify(email, code, noBackoff);
    expect(right.status).toBe(401);
    expect(await countRows('sessions', "provider = 'email_code' AND user_id = ?", (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<string>('id')) ?? '')).toBe(0);
  });

  it('counts wrong codes against the account back-off shared with password sign-in (429)', async () => {
    const email = uniqueEmail('backoff');
    await register(email);
    for (let i = 0; i < 5; i += 1) expect((await verify(email, '00000000')).status).toBe(401);
    const refused = await verify(email, '00000000');
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: 'rate_limited' });
    expect(await countRows('login_failures', 'email = ?', email)).toBe(1);
  });

  it('expires after 10 minutes', async () => {
    const email = uniqueEmail('late');
    await register(email);
    await requestCode(email);
    const code = await codeFor(email);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 601_000);
    const r = await verify(email, code);
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_credentials' });
  });

  it('sends at most one code a minute per address (no new mail, the first code still works)', async () => {
    const email = uniqueEmail('flood');
    await register(email);
    await requestCode(email);
    const second = await requestCode(email);
    expect(second.status).toBe(202);
    const code = await codeFor(email, 1);
    expect((await verify(email, code)).status).toBe(200);
  });

  it('refuses malformed codes (400) and is absent when off or without mail (404)', async () => {
    const bad = await call('/auth/login/email-code/verify', { json: { email: uniqueEmail(), code: '12ab' }, env: e });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_request' });
    for (const off of [mailEnv({ EMAIL_VERIFICATION: 'off' }), mailEnv({ EMAIL_VERIFICATION: 'off', EMAIL_LOGIN: 'enabled', SMTP_URL: '' })]) {
      const r = await requestCode(uniqueEmail(), off);
      expect(r.status).toBe(404);
      expect(await r.json()).toMatchObject({ error: 'not_found' });
      const page = await call('/auth/login/email-code', { env: off, headers: { accept: 'text/html' } });
      expect(page.status).toBe(404);
      // ...and the sign-in page does not offer it.
      expect(await (await call('/auth/login', { env: off, headers: { accept: 'text/html' } })).text()).not.toContain('id="to-email-code"');
    }
  });

  it('the sign-in page links to it (return_to carried) when it is on', async () => {
    const html = await (await call('/auth/login?return_to=%2Fapp', { env: e, headers: { accept: 'text/html' } })).text();
    expect(html).toContain('<a href="/auth/login/email-code?return_to=%2Fapp" id="to-email-code">');
  });

  it('claims an unverified account: the password set without proving the address is removed, the address verified', async () => {
    const email = uniqueEmail('claim');
    const id = await register(email);
    await requestCode(email);
    expect((await verify(email, await codeFor(email))).status).toBe(200);
    const row = await env.DB.prepare('SELECT email_verified, password_hash FROM users WHERE id = ?').bind(id).first<{ email_verified: number; password_hash: string | null }>();
    expect(row).toEqual({ email_verified: 1, password_hash: null });
    expect(await countRows('sessions', "user_id = ? AND provider = 'password' AND revoked_at IS NULL", id)).toBe(0);
  });

  it('works as forms: the page, then the code step, then a 303 with session cookies', async () => {
    const email = uniqueEmail('form');
    await register(email);
    const first = await call('/auth/login/email-code?return_to=/app', { env: e, headers: { accept: 'text/html' } });
    expect(first.status).toBe(200);
    expect(await first.text()).toContain('Email me a code');
    const step2 = await call('/auth/login/email-code', { form: { email, return_to: '/app' }, env: e, headers: { origin: 'https://gate.example.com' } });
    expect(step2.status).toBe(200);
    const html = await step2.text();
    expect(html).toContain('autocomplete="one-time-code"');
    expect(html).toContain('If an account uses this address');
    const wrong = await call('/auth/login/email-code/verify', { form: { email, code: '99999999', return_to: '/app' }, env: e, headers: { origin: 'https://gate.example.com' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('The code is wrong');
    const done = await call('/auth/login/email-code/verify', { form: { email, code: await codeFor(email), return_to: '/app' }, env: e, headers: { origin: 'https://gate.example.com' } });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/app');
    expect(setCookies(done).has('__Host-gatehouse')).toBe(true);
  });
});
