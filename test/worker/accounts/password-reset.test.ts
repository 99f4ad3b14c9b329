/**
 * Forgot / reset password: the same answer for every address, a single-use 30-minute
 * link that a GET never uses, the reset ending every session (D1 and KV), the security event
 * and the notice mail, rate limits, mail outages, the pages, the admin endpoints, and
 * housekeeping of expired links. Mail goes to the real SMTP server of the global setup.
 */
import { describe, expect, it } from 'vitest';
import { runHousekeeping } from '../../../src/scheduled/housekeeping';
import { baseEnv, bearer, call, countRows, GOOD_PASSWORD, makeEnv, PUBLIC_URL, revokedKeys, type TestEnv, type TokenResponse } from '../support/helpers';
import { failMailFor, mailFor, mailEnv, recoverMail, uniqueEmail } from '../support/mail';

/** Verification off, so accounts sign in at once; the reset flow only needs mail. */
const env = mailEnv({ EMAIL_VERIFICATION: 'off' });
const NEW_PASSWORD = 'a brand new passphrase for later';

async function account(email = uniqueEmail('reset'), e: TestEnv = env): Promise<TokenResponse> {
  const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
  if (r.status !== 201) throw new Error(`register: ${r.status} ${await r.text()}`);
  return r.json();
}

const forgot = (email: string, e: TestEnv = env, headers: Record<string, string> = {}) => call('/auth/password/forgot', { env: e, json: { email }, headers });
const reset = (token: string, password = NEW_PASSWORD, e: TestEnv = env) => call('/auth/password/reset', { env: e, json: { token, password } });
const login = (email: string, password = GOOD_PASSWORD, e: TestEnv = env) => call('/auth/login', { env: e, json: { email, password } });

async function resetLink(to: string) {
  const mail = (await mailFor(to)).filter((m) => m.subject.startsWith('Reset your')).at(-1);
  if (!mail) throw new Error(`no reset mail to ${to}`);
  const link = new URL(mail.links.find((l) => l.includes('/password/reset'))!);
  return { mail, link, token: link.searchParams.get('token')! };
}

async function resetTokens(email: string) {
  return countRows('account_tokens', "email = ? AND purpose = 'password_reset'", email);
}

const backdate = (email: string) => baseEnv.DB.prepare('UPDATE account_tokens SET created_at = created_at - 120 WHERE email = ?').bind(email).run();
const comparableHeaders = (r: Response) => [...r.headers].filter(([k]) => k !== 'date').sort(([a], [b]) => a.localeCompare(b));

describe('POST /auth/password/forgot', () => {
  it('answers the same for an account, an unknown address and a provider-only account; only the account gets a 30-minute link', async () => {
    const user = await account();
    const providerOnly = uniqueEmail('provider');
    await baseEnv.DB.prepare("INSERT INTO users (id, email, email_verified, roles, created_at, updated_at) VALUES (?, ?, 1, '[]', 0, 0)").bind(`usr_${crypto.randomUUID().slice(0, 12)}`, providerOnly).run();
    const unknown = uniqueEmail('nobody');
    const answers = [];
    for (const email of [user.user.email, unknown, providerOnly]) {
      const r = await forgot(email);
      expect(r.status).toBe(202);
      expect(r.headers.getSetCookie()).toEqual([]);
      answers.push([await r.text(), comparableHeaders(r)]);
    }
    expect(JSON.parse(answers[0]![0] as string)).toEqual({ status: 'check_email', message: expect.stringContaining('30 minutes') });
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(await mailFor(unknown)).toEqual([]);
    expect(await mailFor(providerOnly)).toEqual([]);
    const { mail, link, token } = await resetLink(user.user.email);
    expect(mail.subject).toBe('Reset your Gatehouse password');
    expect(`${link.origin}${link.pathname}`).toBe(`${PUBLIC_URL}/auth/password/reset`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await baseEnv.DB.prepare("SELECT expires_at - created_at AS ttl FROM account_tokens WHERE user_id = ? AND purpose = 'password_reset'").bind(user.user.id).first<{ ttl: number }>();
    expect(row?.ttl).toBe(1800);
    // Unknown addresses leave no row anywhere.
    expect(await countRows('users', 'email = ?', unknown)).toBe(0);
  });

  it('one link a minute per account (the same answer); a newer link replaces the older one', async () => {
    const user = await account();
    await forgot(user.user.email);
    const first = await resetLink(user.user.email);
    expect((await forgot(user.user.email)).status).toBe(202);
    expect((await mailFor(user.user.email)).length).toBe(1);
    await backdate(user.user.email);
    await forgot(user.user.email);
    const second = await resetLink(user.user.email);
    expect(second.token).not.toBe(first.token);
    expect(await resetTokens(user.user.email)).toBe(1);
    const old = await reset(first.token);
    expect(old.status).toBe(400);
    expect((await old.json<{ error: string }>()).error).toBe('invalid_link');
    expect((await reset(second.token)).status).toBe(200);
  });

  it('is rate-limited per IP: over the limit, 429 and no mail', async () => {
    const user = await account();
    const refusing = mailEnv({ EMAIL_VERIFICATION: 'off', RATE_LIMITER_ACCOUNT_MAIL: { limit: async () => ({ success: false }) } });
    const r = await forgot(user.user.email, refusing);
    expect(r.status).toBe(429);
    expect((await r.json<{ error: string }>()).error).toBe('rate_limited');
    const page = await call('/auth/password/forgot', { env: refusing, form: { email: user.user.email }, headers: { origin: PUBLIC_URL } });
    expect(page.status).toBe(429);
    expect(await page.text()).toContain('Too many requests');
    expect(await mailFor(user.user.email)).toEqual([]);
    expect(await resetTokens(user.user.email)).toBe(0);
  });

  it('a mail outage changes nothing in the answer and leaves no link; once mail is back, a new request works at once', async () => {
    const user = await account();
    await failMailFor(user.user.email);
    try {
      const r = await forgot(user.user.email);
      expect(r.status).toBe(202);
      expect(await resetTokens(user.user.email)).toBe(0);
    } finally {
      await recoverMail(user.user.email);
    }
    expect((await forgot(user.user.email)).status).toBe(202);
    expect((await resetLink(user.user.email)).token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('without a mail transport the endpoints are 404 (JSON and page)', async () => {
    const noMail = makeEnv();
    const r = await call('/auth/password/forgot', { env: noMail, json: { email: 'a@example.com' } });
    expect(r.status).toBe(404);
    expect((await r.json<{ error: string }>()).error).toBe('not_found');
    const page = await call('/auth/password/forgot', { env: noMail, headers: { accept: 'text/html' } });
    expect(page.status).toBe(404);
    expect(await page.text()).toContain('Password reset is not available');
    expect((await call('/auth/password/reset?token=x', { env: noMail })).status).toBe(404);
  });
});

describe('the reset link', () => {
  it('GET shows the form and never uses the link; a refused password keeps it working', async () => {
    const user = await account();
    await forgot(user.user.email);
    const { link, token } = await resetLink(user.user.email);
    for (let i = 0; i < 2; i++) {
      const page = await call(`${link.pathname}${link.search}`, { env, headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('action="/auth/password/reset"');
      expect(html).toContain(`name="token" value="${token}"`);
      expect(html).toContain('autocomplete="new-password"');
      expect(html).toContain(user.user.email);
    }
    const weak = await reset(token, 'password1234');
    expect(weak.status).toBe(400);
    expect((await weak.json<{ error: string }>()).error).toBe('invalid_request');
    const weakForm = await call('/auth/password/reset', { env, form: { token, password: 'short' }, headers: { origin: PUBLIC_URL } });
    expect(weakForm.status).toBe(400);
    const html = await weakForm.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain(`name="token" value="${token}"`);
    expect(await resetTokens(user.user.email)).toBe(1);
    expect((await login(user.user.email)).status).toBe(200);
  });

  it('sets the password, ends every session (D1 and KV), records a security event, mails a notice, verifies the address; the link works once', async () => {
    const user = await account();
    const second = await (await login(user.user.email)).json<TokenResponse>();
    expect((await baseEnv.DB.prepare('SELECT email_verified FROM users WHERE id = ?').bind(user.user.id).first<{ email_verified: number }>())!.email_verified).toBe(0);
    await forgot(user.user.email);
    const { token } = await resetLink(user.user.email);

    const r = await reset(token);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'password_reset', email: user.user.email, ended_sessions: 2 });

    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', user.user.id)).toBe(0);
    const keys = await revokedKeys();
    for (const t of [user, second]) {
      const sid = JSON.parse(atob(t.access_token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).sid as string;
      expect(keys).toContain(`sid:${sid}`);
      const me = await call('/auth/me', { env, headers: bearer(t.access_token) });
      expect(me.status).toBe(401);
      expect((await call('/auth/refresh', { env, json: { refresh_token: t.refresh_token } })).status).toBe(401);
    }
    expect(await countRows('auth_events', "event = 'password_reset' AND outcome = 'security' AND user_id = ?", user.user.id)).toBe(1);
    expect(await resetTokens(user.user.email)).toBe(0);
    const row = await baseEnv.DB.prepare('SELECT email_verified FROM users WHERE id = ?').bind(user.user.id).first<{ email_verified: number }>();
    expect(row!.email_verified).toBe(1);
    const notice = (await mailFor(user.user.email)).at(-1)!;
    expect(notice.subject).toBe('Your Gatehouse password was changed');

    expect((await login(user.user.email)).status).toBe(401);
    const fresh = await login(user.user.email, NEW_PASSWORD);
    expect(fresh.status).toBe(200);
    expect((await fresh.json<TokenResponse>()).user.email_verified).toBe(true);

    const again = await reset(token, 'yet another long passphrase');
    expect(again.status).toBe(400);
    expect((await again.json<{ error: string }>()).error).toBe('invalid_link');
    expect((await login(user.user.email, NEW_PASSWORD)).status).toBe(200);
  });

  it('a tampered, expired, foreign-purpose or missing link: a clear page (GET), 400 invalid_link (POST), nothing changed', async () => {
    const user = await account();
    await forgot(user.user.email);
    const { token } = await resetLink(user.user.email);
    const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [flipped, 'x', 'a'.repeat(43), `${token}=`]) {
      const page = await call(`/auth/password/reset?token=${encodeURIComponent(bad)}`, { env, headers: { accept: 'text/html' } });
      expect(page.status, bad).toBe(400);
      const html = await page.text();
      expect(html).toContain('This link does not work any more');
      expect(html).toContain('href="/auth/password/forgot"');
      const post = await reset(bad);
      expect(post.status, bad).toBe(400);
      expect((await post.json<{ error: string }>()).error).toBe('invalid_link');
    }
    // A verification link is not a reset link.
    await baseEnv.DB.prepare("UPDATE account_tokens SET purpose = 'verify_email' WHERE email = ?").bind(user.user.email).run();
    expect((await reset(token)).status).toBe(400);
    await baseEnv.DB.prepare("UPDATE account_tokens SET purpose = 'password_reset', expires_at = ? WHERE email = ?").bind(Math.floor(Date.now() / 1000) - 1, user.user.email).run();
    expect((await reset(token)).status).toBe(400);
    expect((await call(`/auth/password/reset?token=${token}`, { env, headers: { accept: 'text/html' } })).status).toBe(400);
    expect((await login(user.user.email)).status).toBe(200);
  });

  it('the form flow: forgot page, "Check your email" page, reset page, "Password changed" page that clears this browser\'s cookies', async () => {
    const user = await account();
    const forgotPage = await call('/auth/password/forgot?return_to=/app', { env, headers: { accept: 'text/html' } });
    expect(forgotPage.status).toBe(200);
    expect(await forgotPage.text()).toContain('action="/auth/password/forgot"');
    const sent = await call('/auth/password/forgot', { env, form: { email: user.user.email, return_to: '/app' }, headers: { origin: PUBLIC_URL } });
    expect(sent.status).toBe(200);
    expect(await sent.text()).toContain('Check your email');
    const { token } = await resetLink(user.user.email);
    const done = await call('/auth/password/reset', { env, form: { token, password: NEW_PASSWORD, username: user.user.email }, headers: { origin: PUBLIC_URL }, cookies: { '__Host-gatehouse': user.access_token } });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Password changed');
    expect(done.headers.getSetCookie().some((c) => c.startsWith('__Host-gatehouse=;') || /^__Host-gatehouse=[^;]*;.*Max-Age=0/i.test(c))).toBe(true);
  });

  it('a double submit: of two resets with one link at once, exactly one sets its password; the other gets invalid_link', async () => {
    const user = await account();
    await forgot(user.user.email);
    const { token } = await resetLink(user.user.email);
    const passwords = ['the first racing passphrase', 'the second racing passphrase'];
    const answers = await Promise.all(passwords.map((p) => reset(token, p)));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 400]);
    const winner = passwords[answers.findIndex((r) => r.status === 200)]!;
    const loser = passwords.find((p) => p !== winner)!;
    expect((await answers.find((r) => r.status === 400)!.json<{ error: string }>()).error).toBe('invalid_link');
    expect((await login(user.user.email, winner)).status).toBe(200);
    expect((await login(user.user.email, loser)).status).toBe(401);
    expect(await countRows('auth_events', "event = 'password_reset' AND user_id = ?", user.user.id)).toBe(1);
  });

  it('a cross-site form post is refused (403) and uses nothing', async () => {
    const user = await account();
    await forgot(user.user.email);
    const { token } = await resetLink(user.user.email);
    const r = await call('/auth/password/reset', { env, form: { token, password: NEW_PASSWORD }, headers: { origin: 'https://evil.example' } });
    expect(r.status).toBe(403);
    expect(await resetTokens(user.user.email)).toBe(1);
  });
});

describe('admin: verify an address, send a reset link', () => {
  async function admin() {
    const a = await account();
    await baseEnv.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(a.user.id).run();
    return a;
  }

  it('marks an address verified and sends a reset link, both audited; unknown users are 404', async () => {
    const boss = await admin();
    const target = await account();
    const verified = await call(`/auth/admin/users/${target.user.id}/verify-email`, { env, method: 'POST', headers: bearer(boss.access_token) });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toMatchObject({ ok: true, user: { id: target.user.id, email_verified: true } });
    expect((await baseEnv.DB.prepare('SELECT email_verified FROM users WHERE id = ?').bind(target.user.id).first<{ email_verified: number }>())!.email_verified).toBe(1);
    const audit = await baseEnv.DB.prepare("SELECT detail FROM auth_events WHERE event = 'admin_email_verified' AND user_id = ?").bind(target.user.id).first<{ detail: string }>();
    expect(JSON.parse(audit!.detail)).toMatchObject({ admin: boss.user.id, changed: true });

    const sent = await call(`/auth/admin/users/${target.user.id}/password-reset`, { env, method: 'POST', headers: bearer(boss.access_token) });
    expect(sent.status).toBe(200);
    expect(await sent.json()).toEqual({ ok: true, sent_to: target.user.email });
    expect(await countRows('auth_events', "event = 'admin_password_reset_sent' AND user_id = ?", target.user.id)).toBe(1);
    const { token } = await resetLink(target.user.email);
    expect((await reset(token)).status).toBe(200);

    for (const action of ['verify-email', 'password-reset']) {
      const r = await call(`/auth/admin/users/usr_nobody/${action}`, { env, method: 'POST', headers: bearer(boss.access_token) });
      expect(r.status, action).toBe(404);
      expect((await r.json<{ error: string }>()).error).toBe('not_found');
    }
    // Not for non-admins.
    const someone = await account();
    const r = await call(`/auth/admin/users/${boss.user.id}/password-reset`, { env, method: 'POST', headers: bearer(someone.access_token) });
    expect(r.status).toBe(403);
    expect(await countRows('auth_events', "event = 'admin_password_reset_sent' AND user_id = ?", boss.user.id)).toBe(0);
  });

  it('the reset link: 503 mail_unavailable with no link left when mail fails; 409 without mail or without a password', async () => {
    const boss = await admin();
    const target = await account();
    await failMailFor(target.user.email);
    try {
      const r = await call(`/auth/admin/users/${target.user.id}/password-reset`, { env, method: 'POST', headers: bearer(boss.access_token) });
      expect(r.status).toBe(503);
      expect((await r.json<{ error: string }>()).error).toBe('mail_unavailable');
      expect(await resetTokens(target.user.email)).toBe(0);
      expect(await countRows('auth_events', "event = 'admin_password_reset_sent' AND user_id = ?", target.user.id)).toBe(0);
    } finally {
      await recoverMail(target.user.email);
    }
    const noMailEnv = makeEnv();
    const noMailAdmin = await account(undefined, noMailEnv);
    await baseEnv.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(noMailAdmin.user.id).run();
    const noMail = await call(`/auth/admin/users/${target.user.id}/password-reset`, { env: noMailEnv, method: 'POST', headers: bearer(noMailAdmin.access_token) });
    expect(noMail.status).toBe(409);
    await baseEnv.DB.prepare('UPDATE users SET password_hash = NULL WHERE id = ?').bind(target.user.id).run();
    const noPassword = await call(`/auth/admin/users/${target.user.id}/password-reset`, { env, method: 'POST', headers: bearer(boss.access_token) });
    expect(noPassword.status).toBe(409);
    expect((await noPassword.json<{ error: string }>()).error).toBe('conflict');
  });
});

describe('housekeeping', () => {
  it('deletes expired account tokens and keeps live ones', async () => {
    const a = await account();
    const b = await account();
    await forgot(a.user.email);
    await forgot(b.user.email);
    const t = Math.floor(Date.now() / 1000);
    await baseEnv.DB.prepare('UPDATE account_tokens SET expires_at = ? WHERE email = ?').bind(t - 10, a.user.email).run();
    const report = await runHousekeeping(baseEnv.DB, { AUDIT_RETENTION_DAYS: 90 }, t);
    expect(report.accountTokens).toBeGreaterThanOrEqual(1);
    expect(await resetTokens(a.user.email)).toBe(0);
    expect(await resetTokens(b.user.email)).toBe(1);
  });
});
