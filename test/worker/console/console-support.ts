/**
 * The console's test cast: an admin signed in with a second factor (an authenticator app set up
 * through the account pages, so the session's `amr` has `mfa`), an admin and a user without one,
 * and requests as a browser sends them (HTML navigations and form posts).
 */
import { env } from 'cloudflare:test';
import { expect } from 'vitest';
import { call, countRows, type TestEnv } from '../support/helpers';
import { mailEnv, uniqueEmail } from '../support/mail';
import { cookieSession } from '../support/proxy-helpers';
import { ENCRYPTION_KEY, NAV, userWithTotp, type Jar } from '../support/second-factor-helpers';

export { NAV };

/** Mail on (reset links, notices; registration signs in at once) and second factors on. */
export const consoleEnv = (overrides: Record<string, unknown> = {}): TestEnv => mailEnv({ TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY, EMAIL_VERIFICATION: 'optional', ...overrides });

export async function setStoredRoles(userId: string, roles: string[]) {
  await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(roles), userId).run();
}

const idOf = async (email: string) => (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!.id;

/** An admin (stored role) whose cookie session was stepped up with an authenticator app. */
export async function adminWithSecondFactor(e: TestEnv) {
  const u = await userWithTotp(e, uniqueEmail('console-admin'));
  await setStoredRoles(u.userId, ['admin']);
  return { id: u.userId, email: u.email, jar: u.jar };
}

/** A cookie session of a password user without a second factor; `admin` gives them the stored role. */
export async function plainSession(e: TestEnv, admin: boolean): Promise<{ id: string; email: string; jar: Jar }> {
  const s = await cookieSession(e, uniqueEmail(admin ? 'console-weak-admin' : 'console-user'));
  const id = await idOf(s.email);
  if (admin) await setStoredRoles(id, ['admin']);
  return { id, email: s.email, jar: s.cookies };
}

/** A browser's top-level GET. */
export const browse = (e: TestEnv, jar: Jar | undefined, path: string) => call(path, { env: e, cookies: jar, headers: NAV });

/** A browser's form post from the gateway's own page (Origin and Sec-Fetch-Site same-origin, as call() adds). */
export const submit = (e: TestEnv, jar: Jar | undefined, path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  call(path, { env: e, cookies: jar, headers: { ...NAV, ...headers }, form });

/** The stored audit rows of `event` for `userId`, details parsed. */
export async function auditRows(event: string, userId: string) {
  const { results } = await env.DB.prepare('SELECT detail FROM auth_events WHERE event = ? AND user_id = ?').bind(event, userId).all<{ detail: string }>();
  return results.map((r) => JSON.parse(r.detail) as Record<string, unknown>);
}

/** Everything a refused or unconfirmed action must leave as it was, for `userId`. */
export async function userState(userId: string) {
  const user = await env.DB.prepare('SELECT roles, disabled_at, password_hash IS NOT NULL AS has_password FROM users WHERE id = ?').bind(userId).first();
  return {
    user,
    liveSessions: await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', userId),
    totp: await countRows('totp_factors', 'user_id = ?', userId),
    recoveryCodes: await countRows('recovery_codes', 'user_id = ?', userId),
    adminEvents: await countRows('auth_events', "user_id = ? AND event LIKE 'admin_%' AND event NOT IN ('admin_user_viewed', 'admin_consents_viewed', 'admin_users_listed', 'admin_denied')", userId),
  };
}

/** A page's HTML, checking it is one of ours (the nonce CSP). */
export async function pageHtml(r: Response): Promise<string> {
  expect(r.headers.get('content-type')).toMatch(/^text\/html/);
  expect(r.headers.get('content-security-policy')).toMatch(/script-src 'nonce-/);
  return r.text();
}
