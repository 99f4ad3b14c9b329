/**
 * Email verification: `EMAIL_VERIFICATION` and its defaults, registration that
 * answers the same for new and taken addresses, links that a GET never uses, the sign-in
 * refusal of an unverified account and its resend, mail outages, and what a verified address
 * then opens (ADMIN_EMAILS, route allow lists). Mail goes to the real SMTP server of the
 * worker project's global setup.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { baseEnv, bearer, call, countRows, GOOD_PASSWORD, makeEnv, PUBLIC_URL, setCookies, type TestEnv, type TokenResponse } from '../support/helpers';
import { answerWhileWritesHeld } from '../support/held-writes';
import { failMailFor, mailFor, mailEnv, recoverMail, uniqueEmail } from '../support/mail';

/** One env per mode for the whole file, as an isolate would keep it. */
const required = mailEnv();
const optional = mailEnv({ EMAIL_VERIFICATION: 'optional' });
const ROUTES = [{ path: '/team', origin: 'https://team.internal.example', auth: 'required', allow: { domains: ['verified.example'] } }];

async function userRow(email: string) {
  return baseEnv.DB.prepare('SELECT id, email_verified, password_hash FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number; password_hash: string | null }>();
}

async function tokenRows(userId: string, purpose = 'verify_email') {
  return countRows('account_tokens', 'user_id = ? AND purpose = ?', userId, purpose);
}

/** The link in the latest verification mail to `to`, and its token. */
async function verificationLink(to: string, nth = -1) {
  const mails = (await mailFor(to)).filter((m) => m.subject.startsWith('Confirm your email'));
  const mail = mails.at(nth);
  if (!mail) throw new Error(`no verification mail to ${to}`);
  const link = new URL(mail.links.find((l) => l.includes('/email/verify'))!);
  return { mail, link, token: link.searchParams.get('token')! };
}

const register = (env: TestEnv, email: string, password = GOOD_PASSWORD, extra: Record<string, unknown> = {}) => call('/auth/register', { env, json: { email, password, ...extra } });
const login = (env: TestEnv, email: string, password = GOOD_PASSWORD) => call('/auth/login', { env, json: { email, password } });
/** Confirms a link as its registrant does: with the account's password (GOOD_PASSWORD unless told). */
const confirm = (env: TestEnv, token: string, password = GOOD_PASSWORD) => call('/auth/email/verify', { env, json: { token, password } });

/** Headers a client sees, without the ones that differ by the clock alone. */
function comparableHeaders(r: Response) {
  return [...r.headers].filter(([k]) => k !== 'date').sort(([a], [b]) => a.localeCompare(b));
}

describe('EMAIL_VERIFICATION: defaults and checks', () => {
  it('defaults to required with a mail transport and to off without; required or optional without mail is a configuration error', () => {
    const base = { ENVIRONMENT: 'production', PUBLIC_URL, SIGNING_KEYS: '{"keys":[]}' };
    const withSmtp = parseConfig({ ...base, SMTP_URL: 'smtp://127.0.0.1:2525' });
    expect(withSmtp.ok && withSmtp.config.EMAIL_VERIFICATION).toBe('required');
    const withBinding = parseConfig({ ...base, EMAIL: baseEnv.TEST_EMAIL_SERVICE });
    expect(withBinding.ok && withBinding.config.EMAIL_VERIFICATION).toBe('required');
    const without = parseConfig(base);
    expect(without.ok && without.config.EMAIL_VERIFICATION).toBe('off');
    expect(parseConfig({ ...base, SMTP_URL: 'smtp://127.0.0.1:2525', EMAIL_VERIFICATION: ' Optional ' })).toMatchObject({ ok: true, config: { EMAIL_VERIFICATION: 'optional' } });
    expect(parseConfig({ ...base, SMTP_URL: 'smtp://127.0.0.1:2525', EMAIL_VERIFICATION: 'off' })).toMatchObject({ ok: true, config: { EMAIL_VERIFICATION: 'off' } });
    for (const mode of ['required', 'optional']) {
      const r = parseConfig({ ...base, EMAIL_VERIFICATION: mode });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error.setting).toBe('EMAIL_VERIFICATION');
      expect(!r.ok && r.error.message).toContain('mail transport');
    }
    const bad = parseConfig({ ...base, SMTP_URL: 'smtp://127.0.0.1:2525', EMAIL_VERIFICATION: 'sometimes' });
    expect(!bad.ok && bad.error.setting).toBe('EMAIL_VERIFICATION');
  });

  it('a gateway without mail answers 404 on the verification endpoints and registers as before (201, signed in, no mail)', async () => {
    const env = makeEnv();
    const email = uniqueEmail('off');
    const r = await register(env, email);
    expect(r.status).toBe(201);
    expect(await r.json()).toMatchObject({ token_type: 'Bearer', user: { email, email_verified: false } });
    for (const [path, init] of [
      ['/auth/email/verify?token=x', {}],
      ['/auth/email/verify', { json: { token: 'x' } }],
      ['/auth/email/verify/resend', { json: { email } }],
    ] as const) {
      const refused = await call(path, { env, ...init });
      expect(refused.status, path).toBe(404);
      expect((await refused.json<{ error: string }>()).error).toBe('not_found');
    }
    expect(await mailFor(email)).toEqual([]);
  });
});

describe('EMAIL_VERIFICATION=required: registration', () => {
  it('a new address: 202 "check your email", no session and no cookie, an unverified user, one link mailed from PUBLIC_URL', async () => {
    const email = uniqueEmail('new');
    const r = await register(required, email, GOOD_PASSWORD, { session: 'cookie' });
    expect(r.status).toBe(202);
    expect(await r.json()).toEqual({ status: 'check_email', message: expect.stringContaining('open the link') });
    expect(r.headers.getSetCookie()).toEqual([]);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const user = await userRow(email);
    expect(user).toMatchObject({ email_verified: 0 });
    expect(await countRows('sessions', 'user_id = ?', user!.id)).toBe(0);
    expect(await tokenRows(user!.id)).toBe(1);
    const { mail, link, token } = await verificationLink(email);
    expect(mail.subject).toBe('Confirm your email for Gatehouse');
    expect(`${link.origin}${link.pathname}`).toBe(`${PUBLIC_URL}/auth/email/verify`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(mail.html).toContain('Confirm email');
    // Only the hash is stored.
    expect(await countRows('account_tokens', 'token_hash = ?', token)).toBe(0);
  });

  it('does the same work before answering for a new and a taken address: no D1 write, no mail; both happen after', async () => {
    const owner = uniqueEmail('owner-timing');
    await register(required, owner);
    await baseEnv.DB.prepare('UPDATE users SET email_verified = 1 WHERE email = ?').bind(owner).run();
    const fresh = uniqueEmail('fresh-timing');
    const taken = await answerWhileWritesHeld(required, '/auth/register', { email: owner, password: 'another long passphrase here' });
    const created = await answerWhileWritesHeld(required, '/auth/register', { email: fresh, password: 'another long passphrase here' });
    expect(taken.waitedFor, 'the taken address waited for these D1 writes before its answer').toEqual([]);
    expect(created.waitedFor, 'the new address waited for these D1 writes before its answer').toEqual([]);
    expect(created.response!.status).toBe(202);
    expect(taken.response!.status).toBe(created.response!.status);
    expect(await taken.response!.text()).toBe(await created.response!.text());
    expect(comparableHeaders(taken.response!)).toEqual(comparableHeaders(created.response!));
    // After the answer: the new account and its link; the owner told.
    expect(await userRow(fresh)).toMatchObject({ email_verified: 0 });
    await verificationLink(fresh);
    expect((await mailFor(owner)).at(-1)!.subject).toBe('Someone tried to create an account with your email on Gatehouse');
  });

  it('a taken address answers exactly as a new one (status, body, headers); the owner is told, nothing changes', async () => {
    const owner = uniqueEmail('owner');
    await register(required, owner);
    const { token } = await verificationLink(owner);
    expect((await confirm(required, token)).status).toBe(200);
    const before = await userRow(owner);
    const sessionsBefore = await countRows('sessions');

    const taken = await register(required, owner, 'another long passphrase here');
    const fresh = await register(required, uniqueEmail('fresh'), 'another long passphrase here');
    expect(taken.status).toBe(fresh.status);
    expect(await taken.text()).toBe(await fresh.text());
    expect(comparableHeaders(taken)).toEqual(comparableHeaders(fresh));

    expect(await userRow(owner)).toEqual(before);
    expect(await countRows('sessions')).toBe(sessionsBefore);
    expect(await tokenRows(before!.id)).toBe(0);
    const notice = (await mailFor(owner)).at(-1)!;
    expect(notice.subject).toBe('Someone tried to create an account with your email on Gatehouse');
    expect(notice.text).toContain('Nothing was changed');
    expect(notice.links).toEqual([`${PUBLIC_URL}/auth/password/forgot`, `${PUBLIC_URL}/auth/login`]);
    // The owner's password still works.
    expect((await login(required, owner)).status).toBe(200);
  });

  it('an older unverified account (past 24 hours) gets a fresh link but keeps its password: a stranger cannot lock its owner out', async () => {
    const email = uniqueEmail('older');
    await register(required, email);
    await baseEnv.DB.prepare('UPDATE users SET created_at = created_at - 2 * 86400 WHERE email = ?').bind(email).run();
    await baseEnv.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(email).run();
    const before = await userRow(email);
    expect((await register(required, email, 'a stranger picks this one')).status).toBe(202);
    expect((await mailFor(email)).length).toBe(2);
    expect(await userRow(email)).toEqual(before);
    expect((await confirm(required, (await verificationLink(email)).token)).status).toBe(200);
    expect((await login(required, email)).status).toBe(200);
    expect((await login(required, email, 'a stranger picks this one')).status).toBe(401);
  });

  it('an unverified provider-only account is never offered a link (its provider vouches for its address): its owner is told instead', async () => {
    const email = uniqueEmail('provider');
    const id = `usr_${crypto.randomUUID().slice(0, 12)}`;
    await baseEnv.DB.prepare("INSERT INTO users (id, email, email_verified, roles, created_at, updated_at) VALUES (?, ?, 0, '[]', ?, ?)").bind(id, email, Math.floor(Date.now() / 1000), Math.floor(Date.now() / 1000)).run();
    expect((await register(required, email)).status).toBe(202);
    expect((await call('/auth/email/verify/resend', { env: required, json: { email } })).status).toBe(202);
    expect(await tokenRows(id)).toBe(0);
    const mails = await mailFor(email);
    expect(mails.map((m) => m.subject)).toEqual(['Someone tried to create an account with your email on Gatehouse']);
    expect(await userRow(email)).toEqual({ id, email_verified: 0, password_hash: null });
  });

  it('the form post gets the same "Check your email" page for a new and a taken address', async () => {
    const owner = uniqueEmail('form-owner');
    await register(required, owner);
    const pages = [];
    for (const email of [owner, uniqueEmail('form-new')]) {
      const r = await call('/auth/register', { env: required, form: { email, password: GOOD_PASSWORD }, headers: { origin: PUBLIC_URL } });
      expect(r.status).toBe(200);
      expect(r.headers.getSetCookie()).toEqual([]);
      // Each page names the address typed (nothing new to whoever typed it); nothing else differs.
      pages.push((await r.text()).replace(/nonce-[^']+'|nonce="[^"]+"/g, 'NONCE').replaceAll(email, 'ADDRESS'));
    }
    expect(pages[0]).toBe(pages[1]);
    expect(pages[0]).toContain('<strong>ADDRESS</strong>');
    expect(pages[0]).toContain('Check your email');
    expect(pages[0]).toContain('role="status"');
  });

  it('an account still waiting for confirmation gets a fresh link (the older one dies) and takes the newest password', async () => {
    const email = uniqueEmail('pending');
    await register(required, email, 'the first long passphrase');
    const first = await verificationLink(email);
    const r = await register(required, email, 'the second long passphrase');
    expect(r.status).toBe(202);
    // Within the per-account cool-down no second link goes out; move the first one back a minute.
    expect((await mailFor(email)).length).toBe(1);
    await baseEnv.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(email).run();
    expect((await register(required, email, 'the second long passphrase')).status).toBe(202);
    const second = await verificationLink(email);
    expect(second.token).not.toBe(first.token);
    const old = await confirm(required, first.token, 'the first long passphrase');
    expect(old.status).toBe(400);
    expect((await old.json<{ error: string }>()).error).toBe('invalid_link');
    expect((await confirm(required, second.token, 'the second long passphrase')).status).toBe(200);
    expect((await login(required, email, 'the first long passphrase')).status).toBe(401);
    expect((await login(required, email, 'the second long passphrase')).status).toBe(200);
  });

  it('a mail outage: the same 202 (the mail goes after the answer), no link left behind; registering again sends one, with one account', async () => {
    const email = uniqueEmail('outage');
    await failMailFor(email);
    try {
      const r = await register(required, email);
      expect(r.status).toBe(202);
      expect(await r.json()).toEqual({ status: 'check_email', message: expect.stringContaining('open the link') });
      const user = await userRow(email);
      expect(user).toMatchObject({ email_verified: 0 });
      expect(await tokenRows(user!.id)).toBe(0);
      expect(await mailFor(email)).toEqual([]);
    } finally {
      await recoverMail(email);
    }
    const retry = await register(required, email);
    expect(retry.status).toBe(202);
    expect(await countRows('users', 'email = ?', email)).toBe(1);
    const { token } = await verificationLink(email);
    expect((await confirm(required, token)).status).toBe(200);
    expect((await login(required, email)).status).toBe(200);
  });
});

describe('EMAIL_VERIFICATION=required: the link', () => {
  it('GET shows a Confirm button and a password field and never uses the link; POST confirms once; then password sign-in works and the token says verified', async () => {
    const email = uniqueEmail('link');
    await register(required, email);
    const { link, token } = await verificationLink(email);
    const user = await userRow(email);
    for (let i = 0; i < 2; i++) {
      const page = await call(`${link.pathname}${link.search}`, { env: required, headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain(`action="/auth/email/verify"`);
      expect(html).toContain(`name="token" value="${token}"`);
      expect(html).toContain('name="password" type="password"');
      expect(html).toContain(email);
    }
    expect(await tokenRows(user!.id)).toBe(1);
    expect((await userRow(email))!.email_verified).toBe(0);

    const form = await call('/auth/email/verify', { env: required, form: { token, password: GOOD_PASSWORD }, headers: { origin: PUBLIC_URL } });
    // Confirmed and signed in, on a page that says so (test/worker/accounts/email-confirmation-needs-password.test.ts covers where to).
    expect(form.status).toBe(200);
    expect(setCookies(form).has('__Host-gatehouse')).toBe(true);
    expect((await userRow(email))!.email_verified).toBe(1);
    expect(await tokenRows(user!.id)).toBe(0);
    expect(await countRows('auth_events', "event = 'email_verified' AND user_id = ?", user!.id)).toBe(1);

    const again = await confirm(required, token);
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_link' });
    const signIn = await login(required, email);
    expect(signIn.status).toBe(200);
    expect((await signIn.json<TokenResponse>()).user.email_verified).toBe(true);
  });

  it('a tampered, unknown, expired, used or missing link gets a clear page (GET) or 400 invalid_link (POST), never a 500', async () => {
    const email = uniqueEmail('bad');
    await register(required, email);
    const { token } = await verificationLink(email);
    const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [flipped, 'x', '', 'a'.repeat(43), `${token}x`, '../../etc']) {
      const page = await call(`/auth/email/verify?token=${encodeURIComponent(bad)}`, { env: required, headers: { accept: 'text/html' } });
      expect(page.status, bad).toBe(400);
      expect(await page.text()).toContain('This link does not work any more');
      const post = await confirm(required, bad);
      expect(post.status, bad).toBe(400);
      expect((await post.json<{ error: string }>()).error).toBe(bad === '' ? 'invalid_request' : 'invalid_link');
    }
    // Expired: the row is there, but past its time.
    await baseEnv.DB.prepare('UPDATE account_tokens SET expires_at = ? WHERE email = ?').bind(Math.floor(Date.now() / 1000) - 1, email).run();
    expect((await call(`/auth/email/verify?token=${token}`, { env: required, headers: { accept: 'text/html' } })).status).toBe(400);
    expect((await confirm(required, token)).status).toBe(400);
    expect((await userRow(email))!.email_verified).toBe(0);
  });

  it('a double submit confirms once: one 200, one 400 invalid_link, one email_verified event', async () => {
    const email = uniqueEmail('double');
    await register(required, email);
    const { token } = await verificationLink(email);
    const answers = await Promise.all([confirm(required, token), confirm(required, token)]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 400]);
    const user = await userRow(email);
    expect(user!.email_verified).toBe(1);
    expect(await countRows('auth_events', "event = 'email_verified' AND user_id = ?", user!.id)).toBe(1);
  });

  it('verification links live 24 hours', async () => {
    const email = uniqueEmail('ttl');
    await register(required, email);
    const row = await baseEnv.DB.prepare("SELECT expires_at - created_at AS ttl FROM account_tokens WHERE email = ? AND purpose = 'verify_email'").bind(email).first<{ ttl: number }>();
    expect(row?.ttl).toBe(86_400);
  });
});

describe('EMAIL_VERIFICATION=required: sign-in and resend', () => {
  it('password sign-in of an unverified account is refused: 403 email_not_verified naming the resend endpoint; no session', async () => {
    const email = uniqueEmail('unverified');
    await register(required, email);
    const user = await userRow(email);
    const r = await login(required, email);
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ error: 'email_not_verified', error_description: expect.stringContaining('Confirm your email'), resend: '/auth/email/verify/resend' });
    expect(await countRows('sessions', 'user_id = ?', user!.id)).toBe(0);
    // The wrong password still gets the usual answer: the refusal does not help guessing.
    expect((await login(required, email, 'not the password at all')).status).toBe(401);
  });

  it('the sign-in form gets a page with a resend button that posts the address', async () => {
    const email = uniqueEmail('unverified-form');
    await register(required, email);
    const r = await call('/auth/login', { env: required, form: { email, password: GOOD_PASSWORD }, headers: { origin: PUBLIC_URL } });
    expect(r.status).toBe(403);
    expect(r.headers.getSetCookie()).toEqual([]);
    const html = await r.text();
    expect(html).toContain('Confirm your email first');
    expect(html).toContain('action="/auth/email/verify/resend"');
    expect(html).toContain(`name="email" value="${email}"`);
    expect(html).toContain('Send a new link');
  });

  it('resend answers the same for unknown, verified and unverified addresses; only the unverified one gets a link, once a minute', async () => {
    const unverified = uniqueEmail('resend');
    const verified = uniqueEmail('resend-done');
    const unknown = uniqueEmail('resend-nobody');
    await register(required, unverified);
    await register(required, verified);
    expect((await confirm(required, (await verificationLink(verified)).token)).status).toBe(200);
    await baseEnv.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(unverified).run();
    const answers = [];
    for (const email of [unverified, verified, unknown]) {
      const r = await call('/auth/email/verify/resend', { env: required, json: { email } });
      expect(r.status).toBe(202);
      answers.push([await r.text(), comparableHeaders(r)]);
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect((await mailFor(unverified)).length).toBe(2);
    expect((await mailFor(verified)).length).toBe(1);
    expect(await mailFor(unknown)).toEqual([]);
    // Within the minute: the same answer, no mail.
    expect((await call('/auth/email/verify/resend', { env: required, json: { email: unverified } })).status).toBe(202);
    expect((await mailFor(unverified)).length).toBe(2);
    // The newest link works.
    expect((await confirm(required, (await verificationLink(unverified)).token)).status).toBe(200);
  });

  it('resend is rate-limited per IP: over the limit, 429 and no mail', async () => {
    const email = uniqueEmail('resend-limited');
    await register(required, email);
    await baseEnv.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(email).run();
    const keys: string[] = [];
    const refusing = { limit: async ({ key }: { key: string }) => (keys.push(key), { success: false }) };
    const env = mailEnv({ RATE_LIMITER_ACCOUNT_MAIL: refusing });
    const r = await call('/auth/email/verify/resend', { env, json: { email }, headers: { 'cf-connecting-ip': '198.51.100.77' } });
    expect(r.status).toBe(429);
    expect((await r.json<{ error: string }>()).error).toBe('rate_limited');
    expect(keys).toEqual(['account_mail:198.51.100.77']);
    expect((await mailFor(email)).length).toBe(1);
  });
});

describe('what a verified address opens', () => {
  it('ADMIN_EMAILS and a route allow list match a password account only once its address is verified', async () => {
    const email = `admin-${crypto.randomUUID().slice(0, 8)}@verified.example`;
    const env = mailEnv({ ADMIN_EMAILS: email, ROUTES: JSON.stringify(ROUTES) });
    await register(env, email);
    // An unverified account cannot sign in under `required`: the same gateway in `optional` mode gives it a token.
    const optionalEnv = mailEnv({ ADMIN_EMAILS: email, ROUTES: JSON.stringify(ROUTES), EMAIL_VERIFICATION: 'optional' });
    const before = await (await login(optionalEnv, email)).json<TokenResponse>();
    expect(before.user.email_verified).toBe(false);
    expect(before.user.roles).not.toContain('admin');
    const refused = await call('/auth/verify', { env: optionalEnv, headers: { ...bearer(before.access_token), 'x-original-uri': '/team/x' } });
    expect(refused.status).toBe(403);

    expect((await confirm(env, (await verificationLink(email)).token)).status).toBe(200);
    const after = await (await login(env, email)).json<TokenResponse>();
    expect(after.user.email_verified).toBe(true);
    expect(after.user.roles).toContain('admin');
    const allowed = await call('/auth/verify', { env, headers: { ...bearer(after.access_token), 'x-original-uri': '/team/x' } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('x-auth-email')).toBe(email);
  });
});

describe('EMAIL_VERIFICATION=optional', () => {
  it('registration signs in as before (201) and the mail offers verification; confirming ends the sessions the unproven account had and signs in verified', async () => {
    const email = uniqueEmail('optional');
    const r = await call('/auth/register', { env: optional, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
    expect(r.status).toBe(201);
    const cookies = setCookies(r);
    expect(cookies.has('__Host-gatehouse')).toBe(true);
    expect((await r.json<{ user: { email_verified: boolean } }>()).user.email_verified).toBe(false);
    const { token } = await verificationLink(email);
    // Unverified accounts may sign in in this mode.
    const signIn = await login(optional, email);
    expect(signIn.status).toBe(200);
    const tokens = await signIn.json<TokenResponse>();
    const confirmed = await confirm(optional, token);
    expect(confirmed.status).toBe(200);
    expect((await confirmed.json<TokenResponse>()).user.email_verified).toBe(true);
    // Proving the mailbox ends every session started before the address was proven.
    const refreshed = await call('/auth/refresh', { env: optional, json: { refresh_token: tokens.refresh_token } });
    expect(refreshed.status).toBe(401);
    // A taken address is still 409 in this mode (the account was signed in straight away).
    const taken = await register(optional, email);
    expect(taken.status).toBe(409);
  });

  it('a mail outage does not fail the registration (the link is an offer): 201, no link left behind', async () => {
    const email = uniqueEmail('optional-outage');
    await failMailFor(email);
    try {
      const r = await register(optional, email);
      expect(r.status).toBe(201);
      const user = await userRow(email);
      expect(await tokenRows(user!.id)).toBe(0);
    } finally {
      await recoverMail(email);
    }
  });
});
