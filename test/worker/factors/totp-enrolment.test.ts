/**
 * Setting up, removing and re-issuing second factors from the account page: QR code and key,
 * first code confirms, secret encrypted at rest, recent sign-in required, recovery codes hashed.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { call, makeEnv, uniqueEmail } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';
import { agedJar, mfaEnv, NAV, recoveryCodesFromPage, secretFromPage, totpCode, updateJar, userWithTotp } from '../support/second-factor-helpers';

const e = mfaEnv();

async function totpRow(userId: string) {
  return env.DB.prepare('SELECT * FROM totp_factors WHERE user_id = ?').bind(userId).first<{ secret_encrypted: string; confirmed_at: number | null; last_used_step: number | null }>();
}
async function userId(email: string) {
  return (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!.id;
}

describe('setting up an authenticator app', () => {
  it('shows a server-rendered QR code and the key; the secret is stored encrypted and unconfirmed', async () => {
    const email = uniqueEmail('enrol');
    const { cookies } = await cookieSession(e, email);
    const r = await call('/auth/account/totp', { env: e, cookies, headers: NAV });
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    // Scripts only by the page's nonce (the pages' show-password toggle); none may connect out.
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9_-]+';/);
    expect(csp).not.toContain('connect-src');
    const html = await r.text();
    expect(html).toMatch(/<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 \d+ \d+"><rect fill="#ffffff"/);
    expect(html).not.toMatch(/<script[^>]* src=/); // no script from anywhere
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)[^"]*qr/i); // no third-party QR service
    const secret = secretFromPage(html);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits
    const row = await totpRow(await userId(email));
    expect(row).toMatchObject({ confirmed_at: null, last_used_step: null });
    expect(row!.secret_encrypted.split('.')).toHaveLength(5); // JWE compact
    expect(row!.secret_encrypted).not.toContain(secret);
  });

  it('a wrong first code is refused on the same page, counted, and leaves the app off', async () => {
    const email = uniqueEmail('enrol-wrong');
    const { cookies } = await cookieSession(e, email);
    const secret = secretFromPage(await (await call('/auth/account/totp', { env: e, cookies, headers: NAV })).text());
    const wrong = totpCode(secret) === '000000' ? '111111' : '000000';
    const r = await call('/auth/account/totp/confirm', { env: e, cookies, headers: NAV, form: { code: wrong } });
    expect(r.status).toBe(401);
    const html = await r.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain('The code is incorrect or has expired');
    expect(secretFromPage(html)).toBe(secret); // the same key, to try again
    const id = await userId(email);
    expect((await totpRow(id))!.confirmed_at).toBeNull();
    expect(await env.DB.prepare('SELECT count FROM second_factor_failures WHERE user_id = ?').bind(id).first('count')).toBe(1);
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ?').bind(id).first('n')).toBe(0);
  });

  it('the first valid code turns it on, shows ten recovery codes once (stored hashed), and makes the session multi-factor', async () => {
    const { userId: id, codes, jar, secret } = await userWithTotp(e);
    const row = await totpRow(id);
    expect(row!.confirmed_at).not.toBeNull();
    // The confirming code's time step is spent: that code cannot be used again.
    expect(Math.abs(row!.last_used_step! - Math.floor(Date.now() / 30_000))).toBeLessThanOrEqual(1);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
    const { results } = await env.DB.prepare('SELECT code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL').bind(id).all<{ code_hash: string }>();
    expect(results).toHaveLength(10);
    const stored = results.map((r) => r.code_hash).join(' ');
    for (const code of codes) {
      expect(stored).not.toContain(code.replaceAll('-', ''));
    }
    expect(stored).not.toContain(secret);
    expect(decodeJwt(jar['__Host-gatehouse']!).amr).toEqual(['pwd', 'otp', 'mfa']);
    const events = await env.DB.prepare("SELECT event FROM auth_events WHERE user_id = ? AND event IN ('totp_enrolled', 'recovery_codes_generated')").bind(id).all<{ event: string }>();
    expect(events.results.map((r) => r.event).sort()).toEqual(['recovery_codes_generated', 'totp_enrolled']);
    // The account page now says so, and a second set-up is refused.
    const page = await (await call('/auth/account', { env: e, cookies: jar, headers: NAV })).text();
    expect(page).toContain('Authenticator app: on');
    expect(page).toContain('10 unused recovery codes left');
    const again = await call('/auth/account/totp', { env: e, cookies: jar, headers: NAV });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('/auth/account?done=totp_already_on');
  });

  it('needs a recent sign-in: a browser is sent to step up and back, an API client gets RFC 9470 max_age', async () => {
    const { cookies } = await cookieSession(e);
    const old = await agedJar(e, { ...cookies }, 3600);
    const r = await call('/auth/account/totp', { env: e, cookies: old, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/step-up?return_to=%2Fauth%2Faccount%2Ftotp');
    const api = await call('/auth/account/totp', { env: e, headers: { authorization: `Bearer ${old['__Host-gatehouse']}` } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toContain('error="insufficient_user_authentication"');
    expect(api.headers.get('www-authenticate')).toContain('max_age=600');
    expect(await api.json()).toMatchObject({ error: 'insufficient_user_authentication', max_age: 600 });
  });

  it('is not offered in production without TOKEN_ENCRYPTION_KEY', async () => {
    const plain = makeEnv();
    const { cookies } = await cookieSession(plain);
    const page = await (await call('/auth/account', { env: plain, cookies, headers: NAV })).text();
    expect(page).toContain('Authenticator apps are not available on this gateway');
    expect(page).not.toContain('/auth/account/totp"');
    const r = await call('/auth/account/totp', { env: plain, cookies, headers: NAV });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden' });
  });

  it('a browser without a session is sent to sign in and back', async () => {
    const r = await call('/auth/account/totp', { env: e, headers: NAV });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/auth/login?return_to=%2Fauth%2Faccount%2Ftotp');
  });
});

describe('removing it and new recovery codes', () => {
  it('remove needs a recent sign-in, then deletes the app and the recovery codes', async () => {
    const { userId: id, jar } = await userWithTotp(e);
    const old = await agedJar(e, jar, 3600);
    const refused = await call('/auth/account/totp/remove', { env: e, cookies: old, headers: NAV, form: {} });
    expect(refused.status).toBe(303);
    expect(refused.headers.get('location')).toBe('/auth/step-up?return_to=%2Fauth%2Faccount');
    expect(await totpRow(id)).not.toBeNull();
    const r = await call('/auth/account/totp/remove', { env: e, cookies: jar, headers: NAV, form: {} });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/account?done=totp_removed');
    expect(await totpRow(id)).toBeNull();
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ?').bind(id).first('n')).toBe(0);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM auth_events WHERE user_id = ? AND event = 'totp_removed'").bind(id).first('n')).toBe(1);
  });

  it('regenerating replaces every recovery code: the old ones stop working', async () => {
    const { userId: id, jar, codes } = await userWithTotp(e);
    const r = await call('/auth/account/recovery-codes', { env: e, cookies: jar, headers: NAV, form: {} });
    expect(r.status).toBe(200);
    updateJar(jar, r);
    const fresh = recoveryCodesFromPage(await r.text());
    expect(fresh).toHaveLength(10);
    expect(fresh.filter((c) => codes.includes(c))).toEqual([]);
    const { sha256 } = await import('../../../src/util/random');
    const stored = (await env.DB.prepare('SELECT code_hash FROM recovery_codes WHERE user_id = ?').bind(id).all<{ code_hash: string }>()).results.map((r) => r.code_hash);
    expect(stored.sort()).toEqual((await Promise.all(fresh.map((c) => sha256(c.replaceAll('-', ''))))).sort());
  });

  it('regenerating without a second factor is refused', async () => {
    const { cookies } = await cookieSession(e);
    const r = await call('/auth/account/recovery-codes', { env: e, cookies, form: {} });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: 'conflict' });
  });
});
