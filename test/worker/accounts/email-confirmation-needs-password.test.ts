/**
 * Confirming a verification link needs the account's password: someone
 * who registers another person's address with a password of their own must not have that
 * person's click verify the account. A wrong password leaves the link and the account as they
 * were and counts in the sign-in back-off; the right one verifies, signs in like /auth/login
 * and goes on to the registration's return_to (else the account page).
 */
import { describe, expect, it } from 'vitest';
import { markEmailVerified } from '../../../src/storage/email-verification';
import { call, countRows, GOOD_PASSWORD, PUBLIC_URL, setCookies, type TestEnv, type TokenResponse } from '../support/helpers';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';

const required = mailEnv();
const ATTACKER_PASSWORD = 'the attacker chose this passphrase';

async function userRow(email: string) {
  return required.DB.prepare('SELECT id, email_verified, password_hash FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number; password_hash: string }>();
}

const verifyTokens = (userId: string) => countRows('account_tokens', "user_id = ? AND purpose = 'verify_email'", userId);
const failures = (email: string) => required.DB.prepare('SELECT count FROM login_failures WHERE email = ?').bind(email).first<number>('count');

/** The link of the latest verification mail to `to`. */
async function latestLink(to: string) {
  const mail = (await mailFor(to)).filter((m) => m.subject.startsWith('Confirm your email')).at(-1);
  if (!mail) throw new Error(`no verification mail to ${to}`);
  const link = new URL(mail.links.find((l) => l.includes('/email/verify'))!);
  return { link, token: link.searchParams.get('token')! };
}

const register = (email: string, password: string, extra: Record<string, string> = {}, env: TestEnv = required) => call('/auth/register', { env, json: { email, password, ...extra } });
const confirmJson = (token: string, body: Record<string, string> = {}, env: TestEnv = required) => call('/auth/email/verify', { env, json: { token, ...body } });
/** Where the signed-in page's one way on leads. */
const continueHref = (html: string) => /<a class="button primary" href="([^"]*)" data-action="next">/.exec(html)?.[1];
const confirmForm = (form: Record<string, string>, env: TestEnv = required) => call('/auth/email/verify', { env, form, headers: { origin: PUBLIC_URL } });

describe('confirming a verification link: the password of whoever registered', () => {
  it("an attacker registers the victim's address: the victim's click with any other password is refused, the link stays usable, the account unverified", async () => {
    const victim = uniqueEmail('victim');
    expect((await register(victim, ATTACKER_PASSWORD)).status).toBe(202);
    const { token } = await latestLink(victim);
    const user = (await userRow(victim))!;

    // The mailbox owner clicks and confirms with their own password (or none): refused.
    const wrong = await confirmJson(token, { password: GOOD_PASSWORD });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'invalid_credentials', error_description: expect.stringContaining('not the password') });
    expect(wrong.headers.getSetCookie()).toEqual([]);
    const none = await confirmJson(token);
    expect(none.status).toBe(401);
    expect((await none.json<{ error: string }>()).error).toBe('invalid_credentials');

    expect((await userRow(victim))!.email_verified).toBe(0);
    expect(await verifyTokens(user.id)).toBe(1);
    expect(await countRows('sessions', 'user_id = ?', user.id)).toBe(0);
    expect(await countRows('auth_events', "event = 'email_verified' AND outcome = 'success' AND user_id = ?", user.id)).toBe(0);
    expect(await countRows('auth_events', "event = 'email_verified' AND outcome = 'failure' AND user_id = ?", user.id)).toBe(1);
    // The attacker still cannot sign in: the address is not verified.
    const attacker = await call('/auth/login', { env: required, json: { email: victim, password: ATTACKER_PASSWORD } });
    expect(attacker.status).toBe(403);
    expect((await attacker.json<{ error: string }>()).error).toBe('email_not_verified');
    // The page the link opens still works (the refusals did not use it).
    const page = await call(`/auth/email/verify?token=${token}`, { env: required, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
  });

  it('the right password: verified, the link used, signed in (token mode by default, like /auth/login), back-off cleared', async () => {
    const email = uniqueEmail('right');
    await register(email, GOOD_PASSWORD);
    const { token } = await latestLink(email);
    const user = (await userRow(email))!;
    expect((await confirmJson(token, { password: 'a wrong guess of it' })).status).toBe(401);
    expect(await failures(email)).toBe(1);

    const r = await confirmJson(token, { password: GOOD_PASSWORD });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = await r.json<TokenResponse>();
    expect(body).toMatchObject({ token_type: 'Bearer', user: { email, email_verified: true } });
    expect(body.access_token).toEqual(expect.any(String));
    expect(body.refresh_token).toEqual(expect.any(String));
    expect((await userRow(email))!.email_verified).toBe(1);
    expect(await verifyTokens(user.id)).toBe(0);
    expect(await countRows('sessions', 'user_id = ?', user.id)).toBe(1);
    expect(await failures(email)).toBeNull();
    expect(await countRows('auth_events', "event = 'login' AND outcome = 'success' AND user_id = ?", user.id)).toBe(1);
    // The tokens work.
    const me = await call('/auth/me', { env: required, headers: { authorization: `Bearer ${body.access_token}` } });
    expect(me.status).toBe(200);
    // Single use.
    const again = await confirmJson(token, { password: GOOD_PASSWORD });
    expect(again.status).toBe(400);
    expect((await again.json<{ error: string }>()).error).toBe('invalid_link');
  });

  it('JSON session "cookie": the session cookies, no tokens in the body', async () => {
    const email = uniqueEmail('cookie');
    await register(email, GOOD_PASSWORD);
    const r = await confirmJson((await latestLink(email)).token, { password: GOOD_PASSWORD, session: 'cookie' });
    expect(r.status).toBe(200);
    expect(setCookies(r).has('__Host-gatehouse')).toBe(true);
    const body = await r.json<Record<string, unknown>>();
    expect(body).not.toHaveProperty('access_token');
    expect(body).toMatchObject({ user: { email, email_verified: true } });
  });

  it("a stranger's re-registration of a pending account takes its password: the owner's click with the owner's password is refused", async () => {
    const email = uniqueEmail('pending');
    await register(email, GOOD_PASSWORD);
    // Past the per-account cool-down, so the stranger's registration mails a new link.
    await required.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(email).run();
    expect((await register(email, ATTACKER_PASSWORD)).status).toBe(202);
    const { token } = await latestLink(email);
    const r = await confirmJson(token, { password: GOOD_PASSWORD });
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_credentials');
    const user = (await userRow(email))!;
    expect(user.email_verified).toBe(0);
    expect(await verifyTokens(user.id)).toBe(1);
  });

  it('wrong passwords count in the sign-in back-off shared with /auth/login: past the limit even the right one gets 429, the link unused', async () => {
    const env = mailEnv({ LOGIN_FAILURE_LIMIT: '5', LOGIN_BACKOFF_AFTER: '5' });
    const email = uniqueEmail('backoff');
    await register(email, GOOD_PASSWORD, {}, env);
    const { token } = await latestLink(email);
    for (let i = 1; i <= 5; i++) {
      const r = await confirmJson(token, { password: `wrong guess number ${i}` }, env);
      expect(r.status).toBe(401);
      expect(await failures(email)).toBe(i);
    }
    const limited = await confirmJson(token, { password: GOOD_PASSWORD }, env);
    expect(limited.status).toBe(429);
    expect((await limited.json<{ error: string }>()).error).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // The same counter as password sign-in.
    const login = await call('/auth/login', { env, json: { email, password: GOOD_PASSWORD } });
    expect(login.status).toBe(429);
    const user = (await userRow(email))!;
    expect(user.email_verified).toBe(0);
    expect(await verifyTokens(user.id)).toBe(1);
    // Five failures in the window: the burst alert of a sign-in, once.
    expect(await countRows('auth_events', "event = 'login_failure_burst' AND user_id = ?", user.id)).toBe(1);
  });

  it('a disabled account is confirmed but not signed in', async () => {
    const email = uniqueEmail('disabled');
    await register(email, GOOD_PASSWORD);
    await required.DB.prepare('UPDATE users SET disabled_at = 1 WHERE email = ?').bind(email).run();
    const r = await confirmJson((await latestLink(email)).token, { password: GOOD_PASSWORD });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'verified', email });
    expect(r.headers.getSetCookie()).toEqual([]);
    const user = (await userRow(email))!;
    expect(user.email_verified).toBe(1);
    expect(await countRows('sessions', 'user_id = ?', user.id)).toBe(0);
  });

  it('a re-registration between the password check and the update: the address is not verified with the replaced password, and the newer link survives', async () => {
    const email = uniqueEmail('race');
    await register(email, GOOD_PASSWORD);
    const checked = (await userRow(email))!;
    // The stranger's re-registration lands: a new link and a new password.
    await required.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(email).run();
    await register(email, ATTACKER_PASSWORD);
    expect(await markEmailVerified(required.DB, checked.id, email, Math.floor(Date.now() / 1000), checked.password_hash)).toBe(false);
    expect((await userRow(email))!.email_verified).toBe(0);
    expect(await verifyTokens(checked.id)).toBe(1);
  });
});

describe('the confirm page (form)', () => {
  it('GET: the address, a password field, the return_to the registration carried, and "ignore this if it was not you"', async () => {
    const email = uniqueEmail('page');
    await register(email, GOOD_PASSWORD, { return_to: '/app/welcome?step=2' });
    const { link, token } = await latestLink(email);
    expect(link.searchParams.get('return_to')).toBe('/app/welcome?step=2');
    const page = await call(`${link.pathname}${link.search}`, { env: required, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`name="token" value="${token}"`);
    expect(html).toContain('name="return_to" value="/app/welcome?step=2"');
    expect(html).toMatch(/<input[^>]*name="password"[^>]*autocomplete="current-password"|<input[^>]*autocomplete="current-password"[^>]*name="password"/);
    expect(html).toContain('ignore the email');
  });

  it('a wrong password: 401, the form again with the error (the link still in it); the right one: 303 to the return_to, signed in', async () => {
    const email = uniqueEmail('form');
    await register(email, ATTACKER_PASSWORD, { return_to: '/app/welcome' });
    const { token } = await latestLink(email);
    const wrong = await confirmForm({ token, password: GOOD_PASSWORD, return_to: '/app/welcome' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.getSetCookie()).toEqual([]);
    const html = await wrong.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain('not the password');
    expect(html).toContain(`name="token" value="${token}"`);
    expect(html).toContain('name="return_to" value="/app/welcome"');
    expect((await userRow(email))!.email_verified).toBe(0);

    const right = await confirmForm({ token, password: ATTACKER_PASSWORD, return_to: '/app/welcome' });
    expect(right.status).toBe(200);
    expect(await right.clone().text()).toContain(`You are signed in to Gatehouse as <strong>${email}</strong>`);
    expect(continueHref(await right.text())).toBe('/app/welcome');
    expect(setCookies(right).has('__Host-gatehouse')).toBe(true);
    expect((await userRow(email))!.email_verified).toBe(1);
  });

  it('no return_to in the link: on to the account page; a foreign return_to becomes /', async () => {
    const plain = uniqueEmail('plain');
    await register(plain, GOOD_PASSWORD);
    const { link, token } = await latestLink(plain);
    expect(link.searchParams.has('return_to')).toBe(false);
    const r = await confirmForm({ token, password: GOOD_PASSWORD });
    expect(r.status).toBe(200);
    expect(continueHref(await r.text())).toBe('/auth/account');

    const foreign = uniqueEmail('foreign');
    await register(foreign, GOOD_PASSWORD, { return_to: 'https://evil.example/steal' });
    const carried = await latestLink(foreign);
    expect(carried.link.searchParams.get('return_to')).toBe('/');
    const tampered = await confirmForm({ token: carried.token, password: GOOD_PASSWORD, return_to: 'https://evil.example/steal' });
    expect(tampered.status).toBe(200);
    expect(continueHref(await tampered.text())).toBe('/');
  });
});
