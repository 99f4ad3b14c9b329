/**
 * Changing the password and adding a first one: D1, KV and mail asserted.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { issueAccountToken } from '../../../src/storage/account-tokens';
import { nowSeconds } from '../../../src/util/time';
import { bearer, call, countRows, GOOD_PASSWORD, type TestEnv } from '../support/helpers';
import { failMailFor, lastMailFor, mailEnv, mailFor, recoverMail, uniqueEmail } from '../support/mail';
import { ageSignIn } from '../support/second-factor-helpers';

// Registration here is set-up, not the subject: it signs in at once (EMAIL_VERIFICATION=off;
// the verification flow has its own tests in email-verification.test.ts).
const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off' });
const NEW_PASSWORD = 'a whole new phrase for the gate';

async function register(email = uniqueEmail('pw'), testEnv = e) {
  const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD }, env: testEnv });
  expect(r.status).toBe(201);
  const body = (await r.json()) as { access_token: string; refresh_token: string; user: { id: string } };
  return { email, token: body.access_token, refresh: body.refresh_token, id: body.user.id };
}

async function signIn(email: string, password: string, testEnv = e) {
  return call('/auth/login', { json: { email, password }, env: testEnv });
}

async function passwordHash(id: string) {
  return (await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?').bind(id).first<{ password_hash: string | null }>())?.password_hash;
}

/** The session id a token names (its `sid` claim). */
const sidOf = (token: string): string => (JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sid: string }).sid;

const me = (token: string, testEnv = e) => call('/auth/me', { env: testEnv, headers: bearer(token) });

describe('change password', () => {
  it('needs the current password, ends the other sessions (D1 + KV) but not this one, revokes reset links, records the event and mails a notice', async () => {
    const user = await register();
    const other = (await (await signIn(user.email, GOOD_PASSWORD)).json()) as { access_token: string };
    const reset = await issueAccountToken(env.DB, { userId: user.id, purpose: 'password_reset', email: user.email, ttlSeconds: 1800, now: nowSeconds() });
    expect(reset).toBeTruthy();

    const r = await call('/auth/account/password', { json: { current_password: GOOD_PASSWORD, new_password: NEW_PASSWORD }, headers: bearer(user.token), env: e });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 1, notice_sent: true });

    expect((await me(user.token)).status).toBe(200);
    const refused = await me(other.access_token);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_token' });
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', user.id)).toBe(1);
    expect(await env.REVOKED.get(`sid:${sidOf(other.access_token)}`)).not.toBeNull();
    expect(await env.REVOKED.get(`sid:${sidOf(user.token)}`)).toBeNull();
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'password_reset'", user.id)).toBe(0);
    expect(await countRows('auth_events', "user_id = ? AND event = 'password_changed' AND outcome = 'security'", user.id)).toBe(1);

    expect((await signIn(user.email, GOOD_PASSWORD)).status).toBe(401);
    expect((await signIn(user.email, NEW_PASSWORD)).status).toBe(200);
    const notice = await lastMailFor(user.email);
    expect(notice.subject).toMatch(/password was changed/);
    // A notice carries no token: its one link is the account page.
    expect(notice.links).toEqual(['https://gate.example.com/auth/account']);
  });

  it('refuses a wrong current password (401, counted against the sign-in back-off) and changes nothing', async () => {
    const user = await register();
    const before = await passwordHash(user.id);
    const r = await call('/auth/account/password', { json: { current_password: 'not the password at all', new_password: NEW_PASSWORD }, headers: bearer(user.token), env: e });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_credentials', error_description: 'The current password is incorrect.' });
    expect(await passwordHash(user.id)).toBe(before);
    expect(await countRows('login_failures', 'email = ? AND count = 1', user.email)).toBe(1);
    expect(await mailFor(user.email)).toEqual([]);
  });

  it('refuses a new password the registration policy refuses (400) before checking the current one', async () => {
    const user = await register();
    const before = await passwordHash(user.id);
    const r = await call('/auth/account/password', { json: { current_password: GOOD_PASSWORD, new_password: 'password1234' }, headers: bearer(user.token), env: e });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    expect(await passwordHash(user.id)).toBe(before);
    expect(await countRows('login_failures', 'email = ?', user.email)).toBe(0);
  });

  it('keeps the change when the notice cannot be mailed: the notice goes after the answer and cannot fail it', async () => {
    const user = await register();
    await failMailFor(user.email);
    try {
      const r = await call('/auth/account/password', { json: { current_password: GOOD_PASSWORD, new_password: NEW_PASSWORD }, headers: bearer(user.token), env: e });
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ ok: true, notice_sent: true });
      expect(await mailFor(user.email)).toEqual([]);
      expect((await signIn(user.email, NEW_PASSWORD)).status).toBe(200);
    } finally {
      await recoverMail(user.email);
    }
  });

  it('as a form post: 303 back to the account page with a notice; a failure is a page, not JSON', async () => {
    const user = await register();
    const ok = await call('/auth/account/password', { form: { current_password: GOOD_PASSWORD, new_password: NEW_PASSWORD }, cookies: { '__Host-gatehouse': user.token }, env: e });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/auth/account?done=password_changed');
    const page = await call('/auth/account?done=password_changed', { cookies: { '__Host-gatehouse': user.token }, headers: { accept: 'text/html' }, env: e });
    expect(await page.text()).toContain('Your password has been changed.');
    const bad = await call('/auth/account/password', { form: { current_password: 'wrong wrong wrong', new_password: NEW_PASSWORD }, cookies: { '__Host-gatehouse': user.token }, env: e });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('content-type')).toMatch(/text\/html/);
    expect(await bad.text()).toContain('The current password is incorrect.');
  });
});

/** A provider-only account: a registered user whose password is removed and address verified. */
async function providerOnly(testEnv = e) {
  const user = await register(uniqueEmail('nopw'), testEnv);
  await env.DB.prepare('UPDATE users SET password_hash = NULL, email_verified = 1 WHERE id = ?').bind(user.id).run();
  return user;
}

describe('add a password', () => {
  it('needs a recent sign-in: with an hour-old one a browser is sent to step up, an API client gets RFC 9470 max_age, and no link goes out', async () => {
    const user = await providerOnly();
    await ageSignIn(decodeJwt(user.token).sid as string, 3600);
    const refreshed = await call('/auth/refresh', { json: { refresh_token: user.refresh }, env: e });
    expect(refreshed.status).toBe(200);
    const old = ((await refreshed.json()) as { access_token: string }).access_token;
    const api = await call('/auth/account/password/add', { json: {}, headers: bearer(old), env: e });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toContain('error="insufficient_user_authentication"');
    expect(await api.json()).toMatchObject({ error: 'insufficient_user_authentication', max_age: 600 });
    const form = await call('/auth/account/password/add', { form: {}, cookies: { '__Host-gatehouse': old }, env: e });
    expect(form.status).toBe(303);
    expect(form.headers.get('location')).toBe('/auth/step-up?return_to=%2Fauth%2Faccount');
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'add_password'", user.id)).toBe(0);
    expect(await mailFor(user.email)).toEqual([]);
  });

  it('tells the owner once the password is set', async () => {
    const user = await providerOnly();
    expect((await call('/auth/account/password/add', { json: {}, headers: bearer(user.token), env: e })).status).toBe(202);
    const token = new URL((await lastMailFor(user.email)).links[0]!).searchParams.get('token')!;
    expect((await call('/auth/account/password/add/confirm', { json: { token, password: NEW_PASSWORD }, env: e })).status).toBe(200);
    const notice = await lastMailFor(user.email);
    expect(notice.subject).toMatch(/A password was added/);
    expect(notice.links).toEqual(['https://gate.example.com/auth/account']);
  });

  it('mails a link to the verified address; its page does not use it; a weak password keeps it; the set password signs in; the link works once', async () => {
    const user = await providerOnly();
    const r = await call('/auth/account/password/add', { json: {}, headers: bearer(user.token), env: e });
    expect(r.status, await r.clone().text()).toBe(202);
    expect(await r.json()).toEqual({ status: 'link_sent' });
    const mail = await lastMailFor(user.email);
    const link = new URL(mail.links[0]!);
    expect(link.origin + link.pathname).toBe('https://gate.example.com/auth/account/password/add');
    const token = link.searchParams.get('token')!;

    const page = await call(`${link.pathname}${link.search}`, { env: e, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('name="token"');
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'add_password'", user.id)).toBe(1);

    const weak = await call('/auth/account/password/add/confirm', { json: { token, password: 'short' }, env: e });
    expect(weak.status).toBe(400);
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'add_password'", user.id)).toBe(1);

    const set = await call('/auth/account/password/add/confirm', { json: { token, password: NEW_PASSWORD }, env: e });
    expect(set.status, await set.clone().text()).toBe(200);
    expect(await set.json()).toMatchObject({ ok: true, notice_sent: true });
    expect(await passwordHash(user.id)).not.toBeNull();
    expect((await signIn(user.email, NEW_PASSWORD)).status).toBe(200);

    const again = await call('/auth/account/password/add/confirm', { json: { token, password: NEW_PASSWORD }, env: e });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('link is invalid') });
    const gone = await call(`${link.pathname}${link.search}`, { env: e, headers: { accept: 'text/html' } });
    expect(gone.status).toBe(400);
  });

  it('when mail is down: 503 mail_unavailable, no link left behind; the retry works', async () => {
    const user = await providerOnly();
    await failMailFor(user.email);
    const down = await call('/auth/account/password/add', { json: {}, headers: bearer(user.token), env: e });
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ error: 'mail_unavailable' });
    expect(await countRows('account_tokens', 'user_id = ?', user.id)).toBe(0);
    await recoverMail(user.email);
    const retry = await call('/auth/account/password/add', { json: {}, headers: bearer(user.token), env: e });
    expect(retry.status).toBe(202);
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'add_password'", user.id)).toBe(1);
  });

  it('refuses an account that has a password (409), an unverified address (403) and a gateway without mail (403)', async () => {
    const withPassword = await register();
    const has = await call('/auth/account/password/add', { json: {}, headers: bearer(withPassword.token), env: e });
    expect(has.status).toBe(409);
    expect(await has.json()).toMatchObject({ error: 'conflict' });

    const unverified = await providerOnly();
    await env.DB.prepare('UPDATE users SET email_verified = 0 WHERE id = ?').bind(unverified.id).run();
    const r = await call('/auth/account/password/add', { json: {}, headers: bearer(unverified.token), env: e });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden', error_description: expect.stringContaining('not verified') });

    const noMailEnv = mailEnv({ EMAIL_VERIFICATION: 'off', SMTP_URL: '' });
    const nomail = await providerOnly(noMailEnv);
    const off = await call('/auth/account/password/add', { json: {}, headers: bearer(nomail.token), env: noMailEnv });
    expect(off.status).toBe(403);
    expect(await off.json()).toMatchObject({ error: 'forbidden', error_description: expect.stringContaining('cannot send mail') });
    expect(await countRows('account_tokens', 'user_id IN (?, ?, ?)', withPassword.id, unverified.id, nomail.id)).toBe(0);
  });

  it('refuses tampered, foreign-purpose and stale links', async () => {
    const user = await providerOnly();
    const token = await issueAccountToken(env.DB, { userId: user.id, purpose: 'change_email', email: 'x@example.com', ttlSeconds: 600, now: nowSeconds() });
    for (const bad of [token, `${token.slice(0, -1)}A`, 'x', '']) {
      const r = await call('/auth/account/password/add/confirm', { json: { token: bad, password: NEW_PASSWORD }, env: e });
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    }
    // A link sent to an address the account no longer has.
    const stale = await issueAccountToken(env.DB, { userId: user.id, purpose: 'add_password', email: 'old-address@example.com', ttlSeconds: 600, now: nowSeconds() });
    const r = await call('/auth/account/password/add/confirm', { json: { token: stale, password: NEW_PASSWORD }, env: e });
    expect(r.status).toBe(400);
    expect(await passwordHash(user.id)).toBeNull();
  });
});
