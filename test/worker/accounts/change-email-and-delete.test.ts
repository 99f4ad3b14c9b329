/**
 * Changing the email address and deleting the account: D1, KV and mail asserted.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { issueAccountToken } from '../../../src/storage/account-tokens';
import { nowSeconds } from '../../../src/util/time';
import { bearer, call, countRows, GOOD_PASSWORD, type TestEnv } from '../support/helpers';
import { failMailFor, lastMailFor, mailEnv, mailFor, recoverMail, uniqueEmail } from '../support/mail';
import { sessionExec } from '../support/user-sessions-store';

// Long-lived access tokens, so a test can move the clock past the recent-sign-in window.
// Registration here is set-up, not the subject: it signs in at once (EMAIL_VERIFICATION=off;
// the verification flow has its own tests in email-verification.test.ts).
const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', ACCESS_TOKEN_TTL: '3600' });

async function register(email = uniqueEmail('acct')) {
  const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD }, env: e });
  expect(r.status).toBe(201);
  const body = (await r.json()) as { access_token: string; refresh_token: string; user: { id: string } };
  return { email, token: body.access_token, refresh: body.refresh_token, id: body.user.id };
}

const userRow = (id: string) => env.DB.prepare('SELECT email, email_verified FROM users WHERE id = ?').bind(id).first<{ email: string; email_verified: number }>();
const sidOf = (token: string): string => (JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sid: string }).sid;

/** Moves `Date` (only) forward, e.g. past the recent-sign-in window (RECENT_AUTH_SECONDS, 10 minutes by default). */
function laterBy(seconds: number) {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now() + seconds * 1000);
}
afterEach(() => {
  vi.useRealTimers();
});

async function requestChange(token: string, body: Record<string, string>) {
  return call('/auth/account/email', { json: body, headers: bearer(token), env: e });
}

describe('change email', () => {
  it('mails a link to the new address; its page does not use it; confirming moves the account, verified, and tells the old address', async () => {
    const user = await register();
    const next = uniqueEmail('new');
    const r = await requestChange(user.token, { new_email: next.toUpperCase(), current_password: GOOD_PASSWORD });
    expect(r.status, await r.clone().text()).toBe(202);
    expect(await r.json()).toEqual({ status: 'check_inbox' });
    expect(await userRow(user.id)).toMatchObject({ email: user.email });

    const mail = await lastMailFor(next);
    expect(mail.text).toContain(`account currently using ${user.email} asked to move to ${next}`);
    const link = new URL(mail.links[0]!);
    expect(link.pathname).toBe('/auth/account/email/confirm');
    const page = await call(`${link.pathname}${link.search}`, { env: e, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(next);
    // Whoever opens it sees which account would take the address, and is asked for its password.
    expect(html).toContain(`<strong id="current-address">${user.email}</strong>`);
    expect(html).toContain('name="current_password"');
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'change_email'", user.id)).toBe(1);

    const confirm = await call('/auth/account/email/confirm', { form: { token: link.searchParams.get('token')!, current_password: GOOD_PASSWORD }, headers: { origin: 'https://gate.example.com' }, env: e });
    expect(confirm.status).toBe(200);
    expect(await confirm.text()).toContain(`Your account now uses ${next}.`);
    expect(await userRow(user.id)).toEqual({ email: next, email_verified: 1 });
    const notice = await lastMailFor(user.email);
    expect(notice.subject).toMatch(/email address of your .* account was changed/);
    expect(notice.text).toContain(next);
    expect((await call('/auth/login', { json: { email: next, password: GOOD_PASSWORD }, env: e })).status).toBe(200);

    const twice = await call('/auth/account/email/confirm', { json: { token: link.searchParams.get('token')! }, env: e });
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('answers the same for an address another account holds, and refuses at confirmation (409) with nothing changed', async () => {
    const user = await register();
    const owner = await register();
    const free = await requestChange(user.token, { new_email: uniqueEmail('free'), current_password: GOOD_PASSWORD });
    const taken = await requestChange(user.token, { new_email: owner.email, current_password: GOOD_PASSWORD });
    expect(taken.status).toBe(free.status);
    expect(await taken.text()).toBe(await free.text());

    const token = new URL((await lastMailFor(owner.email)).links[0]!).searchParams.get('token')!;
    const r = await call('/auth/account/email/confirm', { json: { token, current_password: GOOD_PASSWORD }, env: e });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: 'conflict', error_description: expect.stringContaining('Nothing was changed') });
    expect(await userRow(user.id)).toMatchObject({ email: user.email });
    expect(await userRow(owner.id)).toMatchObject({ email: owner.email });
    // The present address heard of both requests, and of no change.
    const told = await mailFor(user.email);
    expect(told.map((m) => m.subject)).toEqual([expect.stringMatching(/change of your email address was requested/), expect.stringMatching(/change of your email address was requested/)]);
    expect(told[1]!.text).toContain(owner.email);
  });

  it('needs the current password or a recent sign-in: a wrong password is 401, an old session without one is 403', async () => {
    const user = await register();
    const wrong = await requestChange(user.token, { new_email: uniqueEmail('x'), current_password: 'not my password at all' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_credentials' });

    const recent = await requestChange(user.token, { new_email: uniqueEmail('recent') });
    expect(recent.status).toBe(202);

    laterBy(11 * 60);
    const stale = await requestChange(user.token, { new_email: uniqueEmail('stale') });
    expect(stale.status).toBe(403);
    expect(await stale.json()).toMatchObject({ error: 'forbidden', reauthenticate: true });
    const withPassword = await requestChange(user.token, { new_email: uniqueEmail('pw'), current_password: GOOD_PASSWORD });
    expect(withPassword.status).toBe(202);
  });


  it('the link alone moves nothing: the mailbox owner without the account\'s password or a recent sign-in of that account is refused, and the link still works for the account\'s holder', async () => {
    const attacker = await register();
    const victim = await register();
    const target = uniqueEmail('victim-new');
    expect((await requestChange(attacker.token, { new_email: target, current_password: GOOD_PASSWORD })).status).toBe(202);
    const token = new URL((await lastMailFor(target)).links[0]!).searchParams.get('token')!;

    // The reader of the mail presses "confirm": no session, no password.
    const bare = await call('/auth/account/email/confirm', { json: { token }, env: e });
    expect(bare.status).toBe(403);
    expect(await bare.json()).toMatchObject({ error: 'forbidden', reauthenticate: true, error_description: expect.stringContaining(attacker.email) });
    const form = await call('/auth/account/email/confirm', { form: { token }, headers: { origin: 'https://gate.example.com' }, env: e });
    expect(form.status).toBe(403);
    // A recent session of another account is no proof for this one, nor a wrong password.
    expect((await call('/auth/account/email/confirm', { json: { token }, headers: bearer(victim.token), env: e })).status).toBe(403);
    expect((await call('/auth/account/email/confirm', { json: { token, current_password: 'not the password at all' }, headers: bearer(victim.token), env: e })).status).toBe(401);
    expect(await userRow(attacker.id)).toEqual({ email: attacker.email, email_verified: 0 });
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'change_email'", attacker.id)).toBe(1);

    const r = await call('/auth/account/email/confirm', { json: { token, current_password: GOOD_PASSWORD }, env: e });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await userRow(attacker.id)).toEqual({ email: target, email_verified: 1 });
  });

  it('a recent sign-in of the same account confirms without a password; an older one does not', async () => {
    const user = await register();
    const next = uniqueEmail('recent-confirm');
    expect((await requestChange(user.token, { new_email: next, current_password: GOOD_PASSWORD })).status).toBe(202);
    const token = new URL((await lastMailFor(next)).links[0]!).searchParams.get('token')!;
    const page = await call(`/auth/account/email/confirm?token=${encodeURIComponent(token)}`, { env: e, headers: { accept: 'text/html', ...bearer(user.token) } });
    expect(await page.text()).not.toContain('name="current_password"');

    laterBy(11 * 60);
    const stale = await call('/auth/account/email/confirm', { json: { token }, headers: bearer(user.token), env: e });
    expect(stale.status).toBe(403);
    expect(await userRow(user.id)).toMatchObject({ email: user.email });
    vi.useRealTimers();

    const r = await call('/auth/account/email/confirm', { json: { token }, headers: bearer(user.token), env: e });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await userRow(user.id)).toEqual({ email: next, email_verified: 1 });
  });

  it('confirming ends the account\'s other sessions (their tokens are refused at /auth/verify); the confirming session stays', async () => {
    const user = await register();
    const other = (await (await call('/auth/login', { json: { email: user.email, password: GOOD_PASSWORD }, env: e })).json()) as { access_token: string; refresh_token: string };
    const verify = (token: string) => call('/auth/verify', { env: e, headers: { ...bearer(token), 'x-original-uri': '/app/x' } });
    expect((await verify(other.access_token)).status).toBe(200);
    const next = uniqueEmail('ends-sessions');
    expect((await requestChange(user.token, { new_email: next, current_password: GOOD_PASSWORD })).status).toBe(202);
    const token = new URL((await lastMailFor(next)).links[0]!).searchParams.get('token')!;

    const r = await call('/auth/account/email/confirm', { json: { token }, headers: bearer(user.token), env: e });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toMatchObject({ ok: true, email: next, ended_sessions: 1 });
    expect((await verify(other.access_token)).status).toBe(401);
    expect(await env.REVOKED.get(`sid:${sidOf(other.access_token)}`)).not.toBeNull();
    expect((await call('/auth/refresh', { json: { refresh_token: other.refresh_token }, env: e })).status).toBe(401);
    expect((await verify(user.token)).status).toBe(200);
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', user.id)).toBe(1);
  });

  it('tells the present address of a request, naming the new one, before anything changes', async () => {
    const user = await register();
    const next = uniqueEmail('asked');
    expect((await requestChange(user.token, { new_email: next, current_password: GOOD_PASSWORD })).status).toBe(202);
    const notice = await lastMailFor(user.email);
    expect(notice.subject).toMatch(/change of your email address was requested/);
    expect(notice.text).toContain(next);
    expect(notice.links).toEqual(['https://gate.example.com/auth/account']);
    expect(await userRow(user.id)).toMatchObject({ email: user.email });
  });

  it('the recent-sign-in window is RECENT_AUTH_SECONDS, the same as for second factors', async () => {
    const longer = mailEnv({ EMAIL_VERIFICATION: 'off', ACCESS_TOKEN_TTL: '3600', RECENT_AUTH_SECONDS: '900' });
    const r = await call('/auth/register', { json: { email: uniqueEmail('window'), password: GOOD_PASSWORD }, env: longer });
    const token = ((await r.json()) as { access_token: string }).access_token;
    laterBy(11 * 60);
    const within = await call('/auth/account/email', { json: { new_email: uniqueEmail('within') }, headers: bearer(token), env: longer });
    expect(within.status, await within.clone().text()).toBe(202);
    laterBy(5 * 60);
    const past = await call('/auth/account/email', { json: { new_email: uniqueEmail('past') }, headers: bearer(token), env: longer });
    expect(past.status).toBe(403);
    expect(await past.json()).toMatchObject({ error: 'forbidden', reauthenticate: true, error_description: expect.stringContaining('current password') });
  });

  it('when mail is down: 503 mail_unavailable and no link left behind; the retry works', async () => {
    const user = await register();
    const next = uniqueEmail('down');
    await failMailFor(next);
    const down = await requestChange(user.token, { new_email: next, current_password: GOOD_PASSWORD });
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ error: 'mail_unavailable' });
    expect(await countRows('account_tokens', 'user_id = ?', user.id)).toBe(0);
    await recoverMail(next);
    expect((await requestChange(user.token, { new_email: next, current_password: GOOD_PASSWORD })).status).toBe(202);
  });

  it('refuses the same address (400), a malformed one (400), and tampered or foreign links (400 / a page)', async () => {
    const user = await register();
    const same = await requestChange(user.token, { new_email: user.email, current_password: GOOD_PASSWORD });
    expect(same.status).toBe(400);
    expect(await same.json()).toMatchObject({ error: 'invalid_request' });
    const bad = await requestChange(user.token, { new_email: 'not an address' });
    expect(bad.status).toBe(400);
    const foreign = await issueAccountToken(env.DB, { userId: user.id, purpose: 'add_password', email: user.email, ttlSeconds: 600, now: nowSeconds() });
    for (const t of [foreign, 'A'.repeat(43), '../../etc']) {
      const r = await call('/auth/account/email/confirm', { json: { token: t }, env: e });
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'invalid_request' });
      const page = await call(`/auth/account/email/confirm?token=${encodeURIComponent(t)}`, { env: e, headers: { accept: 'text/html' } });
      expect(page.status).toBe(400);
      expect(await page.text()).toContain('This link is invalid');
    }
    expect(await userRow(user.id)).toMatchObject({ email: user.email });
  });
});

describe('delete account', () => {
  it('with the password: ends every session (D1 + KV), removes the user, identities, sessions and links, keeps the audit rows, mails a notice', async () => {
    const user = await register();
    const other = (await (await call('/auth/login', { json: { email: user.email, password: GOOD_PASSWORD }, env: e })).json()) as { access_token: string };
    await env.DB.prepare("INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ('github', ?, ?, ?, 0)").bind(`gh-${user.id}`, user.id, user.email).run();
    await issueAccountToken(env.DB, { userId: user.id, purpose: 'password_reset', email: user.email, ttlSeconds: 600, now: nowSeconds() });

    const r = await call('/auth/account/delete', { json: { password: GOOD_PASSWORD }, headers: bearer(user.token), env: e });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toEqual({ deleted: true, notice_sent: true });

    expect(await countRows('users', 'id = ?', user.id)).toBe(0);
    expect(await countRows('identities', 'user_id = ?', user.id)).toBe(0);
    expect(await countRows('sessions', 'user_id = ?', user.id)).toBe(0);
    expect(await countRows('account_tokens', 'user_id = ?', user.id)).toBe(0);
    expect(await countRows('auth_events', "user_id = ? AND event = 'account_deleted'", user.id)).toBe(1);
    expect(await countRows('auth_events', "user_id = ? AND event = 'register'", user.id)).toBe(1);
    for (const token of [user.token, other.access_token]) {
      expect(await env.REVOKED.get(`sid:${sidOf(token)}`)).not.toBeNull();
      const me = await call('/auth/me', { headers: bearer(token), env: e });
      expect(me.status).toBe(401);
    }
    const login = await call('/auth/login', { json: { email: user.email, password: GOOD_PASSWORD }, env: e });
    expect(login.status).toBe(401);
    expect(await login.json()).toMatchObject({ error: 'invalid_credentials' });
    expect((await lastMailFor(user.email)).subject).toMatch(/account was deleted/);
  });

  it('refuses a wrong password (401) and a password session without one (403), deleting nothing', async () => {
    const user = await register();
    const wrong = await call('/auth/account/delete', { json: { password: 'definitely not it' }, headers: bearer(user.token), env: e });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_credentials' });
    const none = await call('/auth/account/delete', { json: {}, headers: bearer(user.token), env: e });
    expect(none.status).toBe(403);
    expect(await none.json()).toMatchObject({ error: 'forbidden', reauthenticate: true });
    expect(await countRows('users', 'id = ?', user.id)).toBe(1);
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', user.id)).toBe(1);
  });

  it('accepts a recent provider sign-in instead of the password, and refuses an old one', async () => {
    const user = await register();
    await env.DB.prepare('UPDATE users SET password_hash = NULL, email_verified = 1 WHERE id = ?').bind(user.id).run();
    await sessionExec(`UPDATE sessions SET amr = '["github"]', provider = 'github' WHERE user_id = ?`, [user.id]);
    // A token carrying the provider amr: refresh keeps the session's amr and auth_time.
    const r = await call('/auth/refresh', { json: { refresh_token: user.refresh }, env: e });
    expect(r.status).toBe(200);
    const refreshed = ((await r.json()) as { access_token: string }).access_token;
    laterBy(11 * 60);
    const old = await call('/auth/account/delete', { json: {}, headers: bearer(refreshed), env: e });
    expect(old.status).toBe(403);
    expect(await old.json()).toMatchObject({ error: 'forbidden', error_description: expect.stringContaining('sign in again') });
    vi.useRealTimers();
    const fresh = await call('/auth/account/delete', { json: {}, headers: bearer(refreshed), env: e });
    expect(fresh.status, await fresh.clone().text()).toBe(200);
    expect(await countRows('users', 'id = ?', user.id)).toBe(0);
  });

  it('refuses to delete the last stored admin (409) while ADMIN_EMAILS is empty; another admin lifts that', async () => {
    const admin = await register();
    await env.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(admin.id).run();
    const r = await call('/auth/account/delete', { json: { password: GOOD_PASSWORD }, headers: bearer(admin.token), env: e });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: 'conflict', error_description: expect.stringContaining('only administrator') });
    expect(await countRows('users', 'id = ?', admin.id)).toBe(1);
    const second = await register();
    await env.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(second.id).run();
    const ok = await call('/auth/account/delete', { json: { password: GOOD_PASSWORD }, headers: bearer(admin.token), env: e });
    expect(ok.status).toBe(200);
  });

  it('as a form post: cookies cleared, 303 to a page that says it is done', async () => {
    const user = await register();
    const r = await call('/auth/account/delete', { form: { password: GOOD_PASSWORD }, cookies: { '__Host-gatehouse': user.token }, env: e });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/account/deleted');
    expect(r.headers.getSetCookie().join('\n')).toMatch(/__Host-gatehouse=;/);
    const page = await call('/auth/account/deleted', { env: e, headers: { accept: 'text/html' } });
    expect(await page.text()).toContain('Your account has been deleted');
  });
});
