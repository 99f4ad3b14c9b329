/**
 * A mailed sign-in code is one factor, as a password is: a user with an authenticator app gets
 * the pending second-factor state from it, not a session, so the code alone cannot reach what a
 * session reaches (removing the app, after which the password alone would do).
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { call, countRows, GOOD_PASSWORD, setCookies, type TestEnv } from '../support/helpers';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';
import { ENCRYPTION_KEY, NAV, totpCode, userWithTotp } from '../support/second-factor-helpers';

const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', EMAIL_LOGIN: 'enabled', TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });

/** A verified account with an authenticator app, signed out. */
async function verifiedTotpUser() {
  const u = await userWithTotp(e, uniqueEmail('code-totp'));
  await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(u.userId).run();
  return u;
}

/** Requests a code for `email` and returns it from the mail. */
async function mailedCode(email: string): Promise<string> {
  expect((await call('/auth/login/email-code', { env: e, json: { email } })).status).toBe(202);
  const mail = (await mailFor(email)).filter((m) => /^\d{8} is your/.test(m.subject)).at(-1)!;
  return /^(\d{8})/.exec(mail.subject)![1]!;
}

const sessionCookieNames = (r: Response) => [...setCookies(r).entries()].filter(([name, c]) => name !== '__Host-gatehouse-mfa' && c.value !== '').map(([name]) => name);

describe('sign-in by email code asks for the second factor', () => {
  it('JSON: 401 mfa_required with an mfa_token and no token; the app code then completes it with amr email, otp, mfa', async () => {
    const u = await verifiedTotpUser();
    const before = await countRows('sessions', 'user_id = ?', u.userId);
    const r = await call('/auth/login/email-code/verify', { env: e, json: { email: u.email, code: await mailedCode(u.email) } });
    expect(r.status).toBe(401);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'mfa_required', enrolment_required: false, mfa_token: expect.any(String) });
    expect(body).not.toHaveProperty('access_token');
    expect(sessionCookieNames(r)).toEqual([]);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(before);

    const done = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(u.secret, 1) } });
    expect(done.status, await done.clone().text()).toBe(200);
    const tokens = (await done.json()) as { access_token: string };
    expect(decodeJwt(tokens.access_token).amr).toEqual(['email', 'otp', 'mfa']);
  });

  it('form: a 303 to the second-factor page with its cookie, no session cookie', async () => {
    const u = await verifiedTotpUser();
    const r = await call('/auth/login/email-code/verify', { env: e, form: { email: u.email, code: await mailedCode(u.email) }, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/mfa');
    expect(setCookies(r).get('__Host-gatehouse-mfa')?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessionCookieNames(r)).toEqual([]);
  });

  it('the mailed code cannot remove the authenticator app: no session to do it with, and the password still needs the app', async () => {
    const u = await verifiedTotpUser();
    const r = await call('/auth/login/email-code/verify', { env: e, json: { email: u.email, code: await mailedCode(u.email), session: 'cookie' } });
    expect(r.status).toBe(401);
    const jar = Object.fromEntries([...setCookies(r).entries()].map(([name, c]) => [name, c.value]));
    expect(Object.keys(jar)).toEqual(['__Host-gatehouse-mfa']);

    const remove = await call('/auth/account/totp/remove', { env: e, cookies: jar, form: {} });
    expect(remove.status).toBe(401);
    expect(await countRows('totp_factors', 'user_id = ? AND confirmed_at IS NOT NULL', u.userId)).toBe(1);
    const password = await call('/auth/login', { env: e, json: { email: u.email, password: GOOD_PASSWORD } });
    expect(password.status).toBe(401);
    expect(((await password.json()) as { error: string }).error).toBe('mfa_required');
  });
});
