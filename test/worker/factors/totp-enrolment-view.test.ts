/**
 * Showing the authenticator set-up page (`GET /auth/account/totp`, and `GET /auth/mfa` for a
 * user who must enrol at sign-in) changes nothing while a set-up is in progress: every visit,
 * a reload or another site's link alike, shows the same key, and a code from it still
 * confirms. Only a stale unconfirmed key (older than TOTP_ENROLMENT_FRESH_S) is replaced.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { TOTP_ENROLMENT_FRESH_S } from '../../../src/auth/second-factor';
import { call, GOOD_PASSWORD, registerUser, setCookies, uniqueEmail } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';
import { mfaEnv, NAV, recoveryCodesFromPage, secretFromPage, totpCode } from '../support/second-factor-helpers';

const e = mfaEnv({ MFA_REQUIRED_ROLES: 'admin' });
/** A link followed from another site: the session cookies (SameSite=Lax) go with it. */
const CROSS_SITE_NAV = { accept: 'text/html', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

const accountTotp = async (cookies: Record<string, string>, headers: Record<string, string> = NAV) => {
  const r = await call('/auth/account/totp', { env: e, cookies, headers });
  expect(r.status, await r.clone().text()).toBe(200);
  return secretFromPage(await r.text());
};

describe('GET /auth/account/totp shows the set-up in progress', () => {
  it('the same key on every visit, a cross-site link included; a code from the first still confirms', async () => {
    const { cookies } = await cookieSession(e);
    const first = await accountTotp(cookies);
    expect(await accountTotp(cookies)).toBe(first);
    expect(await accountTotp(cookies, CROSS_SITE_NAV)).toBe(first);
    const done = await call('/auth/account/totp/confirm', { env: e, cookies, headers: NAV, form: { code: totpCode(first) } });
    expect(done.status, await done.clone().text()).toBe(200);
    expect(recoveryCodesFromPage(await done.text())).toHaveLength(10);
  });

  it('a stale unconfirmed key is replaced by a new one, and only the new one confirms', async () => {
    const { cookies, email } = await cookieSession(e);
    const old = await accountTotp(cookies);
    const user = await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>();
    await env.DB.prepare('UPDATE totp_factors SET created_at = created_at - ? WHERE user_id = ?').bind(TOTP_ENROLMENT_FRESH_S + 1, user!.id).run();
    const fresh = await accountTotp(cookies);
    expect(fresh).not.toBe(old);
    expect(await accountTotp(cookies)).toBe(fresh);
    const wrong = await call('/auth/account/totp/confirm', { env: e, cookies, headers: NAV, form: { code: totpCode(old) } });
    expect(wrong.status).toBe(401);
    const done = await call('/auth/account/totp/confirm', { env: e, cookies, headers: NAV, form: { code: totpCode(fresh) } });
    expect(done.status).toBe(200);
  });
});

describe('GET /auth/mfa (set-up required at sign-in) shows the set-up in progress', () => {
  it('a cross-site link to the account page during the sign-in set-up leaves its key alone: the code from /auth/mfa signs in', async () => {
    const email = uniqueEmail('enrol-in-progress');
    // A session from before the user's role required a second factor.
    const { cookies: oldSession } = await cookieSession(e, email);
    const id = (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!.id;
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(['admin']), id).run();
    const signIn = await call('/auth/login', { env: e, headers: NAV, form: { email, password: GOOD_PASSWORD, return_to: '/dashboard' } });
    expect(signIn.headers.get('location')).toBe('/auth/mfa');
    const pending = { '__Host-gatehouse-mfa': setCookies(signIn).get('__Host-gatehouse-mfa')!.value };
    const page = await call('/auth/mfa', { env: e, cookies: pending, headers: NAV });
    const secret = secretFromPage(await page.text());

    // Another site links to the account page; the old session's cookies go with the link.
    expect(await accountTotp(oldSession, CROSS_SITE_NAV)).toBe(secret);
    const again = await call('/auth/mfa', { env: e, cookies: pending, headers: CROSS_SITE_NAV });
    expect(secretFromPage(await again.text())).toBe(secret);

    const done = await call('/auth/mfa', { env: e, cookies: pending, headers: NAV, form: { code: totpCode(secret) } });
    expect(done.status, await done.clone().text()).toBe(200);
    expect(recoveryCodesFromPage(await done.text())).toHaveLength(10);
    expect(setCookies(done).get('__Host-gatehouse')).toBeDefined();
  });

  it('API clients: POST /auth/mfa/enrol twice gives the same key', async () => {
    const email = uniqueEmail('enrol-api');
    const t = await registerUser(email, undefined, e);
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(['admin']), t.user.id).run();
    const r = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await r.json()) as { mfa_token: string };
    const first = (await (await call('/auth/mfa/enrol', { env: e, json: { mfa_token } })).json()) as { secret: string };
    const second = (await (await call('/auth/mfa/enrol', { env: e, json: { mfa_token } })).json()) as { secret: string };
    expect(second.secret).toBe(first.secret);
  });
});
