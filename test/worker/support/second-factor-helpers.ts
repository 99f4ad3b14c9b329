/**
 * Second-factor test helpers: an env that can store authenticator secrets, TOTP codes computed
 * as an authenticator app would (otpauth), and a user with an authenticator app set up through
 * the real pages.
 */
import { sessionExec } from './user-sessions-store';
import { env } from 'cloudflare:test';
import { Secret, TOTP } from 'otpauth';
import { expect } from 'vitest';
import { call, makeEnv, setCookies, uniqueEmail, type TestEnv } from './helpers';
import { cookieSession } from './proxy-helpers';

export const NAV = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' };
export const ENCRYPTION_KEY = 'test-token-encryption-key-0123456789abcdef';

export function mfaEnv(overrides: Record<string, unknown> = {}): TestEnv {
  return makeEnv({ TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY, ...overrides });
}

/** The code an authenticator app shows for `secret`, `offsetSteps` periods from now. */
export function totpCode(secret: string, offsetSteps = 0): string {
  return new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: Date.now() + offsetSteps * 30_000 });
}

export type Jar = Record<string, string>;

/** Applies a response's Set-Cookie lines to a jar (deletions included). */
export function updateJar(jar: Jar, r: Response): Jar {
  for (const [name, { value, attributes }] of setCookies(r)) {
    if (value === '' || /max-age=0\b/i.test(attributes)) delete jar[name];
    else jar[name] = value;
  }
  return jar;
}

export function secretFromPage(html: string): string {
  const m = /id="totp-secret">([A-Z2-7 ]+)</.exec(html);
  expect(m, 'the enrolment page shows the key').not.toBeNull();
  return m![1]!.replaceAll(' ', '');
}

export function recoveryCodesFromPage(html: string): string[] {
  const list = /<ol class="codes" id="recovery-codes">(.*?)<\/ol>/s.exec(html)?.[1] ?? '';
  return [...list.matchAll(/<li>([a-z2-7-]+)<\/li>/g)].map((m) => m[1]!);
}

/** A password user (cookie session, just signed in) who sets up an authenticator app through the account pages. */
export async function userWithTotp(e: TestEnv, email = uniqueEmail('totp'), signedIn?: Jar) {
  const jar: Jar = { ...(signedIn ?? (await cookieSession(e, email)).cookies) };
  const page = await call('/auth/account/totp', { env: e, cookies: jar, headers: NAV });
  expect(page.status, await page.clone().text()).toBe(200);
  const secret = secretFromPage(await page.text());
  const enrolCode = totpCode(secret);
  const done = await call('/auth/account/totp/confirm', { env: e, cookies: jar, headers: NAV, form: { code: enrolCode } });
  expect(done.status, await done.clone().text()).toBe(200);
  updateJar(jar, done);
  const codes = recoveryCodesFromPage(await done.text());
  expect(codes).toHaveLength(10);
  const user = await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>();
  return { email, userId: user!.id, secret, codes, jar, enrolCode };
}

/** Moves a session's sign-in into the past (as if it happened `secondsAgo`). */
export async function ageSignIn(sessionId: string, secondsAgo: number) {
  await sessionExec('UPDATE sessions SET auth_time = ? WHERE id = ?', [Math.floor(Date.now() / 1000) - secondsAgo, sessionId]);
}

/** Ages the jar's session sign-in by `secondsAgo` and refreshes, so the access cookie carries the old auth_time. */
export async function agedJar(e: TestEnv, jar: Jar, secondsAgo: number): Promise<Jar> {
  const { decodeJwt } = await import('jose');
  const sid = decodeJwt(jar['__Host-gatehouse']!).sid as string;
  await ageSignIn(sid, secondsAgo);
  const r = await call('/auth/refresh', { env: e, cookies: jar, method: 'POST' });
  expect(r.status, await r.clone().text()).toBe(200);
  return updateJar({ ...jar }, r);
}
