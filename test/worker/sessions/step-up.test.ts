/**
 * Step-up per route: `require` (mfa, passkey) and `max_auth_age` in ROUTES, checked on the proxy
 * and on forward-auth after the token. Browsers go to the step-up page and back; API clients get
 * RFC 9470's 401; the step-up page re-authenticates (code alone after a recent sign-in, else
 * password and code) and updates the session's amr and auth_time.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { bearer, call, GOOD_PASSWORD, registerUser, setCookies, uniqueEmail } from '../support/helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { agedJar, ENCRYPTION_KEY, type Jar, NAV, totpCode, updateJar, userWithTotp } from '../support/second-factor-helpers';
import { sessionRow } from '../support/user-sessions-store';

const origin = recordingOrigin();
const e = proxyEnv(
  [
    { path: '/secure', origin: 'service:APP', auth: 'required', require: ['mfa'] },
    { path: '/fresh', origin: 'service:APP', auth: 'required', max_auth_age: 300 },
    { path: '/keys', origin: 'service:APP', auth: 'required', require: ['passkey'] },
    { path: '/open', origin: 'service:APP', auth: 'required' },
  ],
  { APP: origin },
  { TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY },
);

/** A TOTP user's second browser session, signed in before the app was set up: amr ["pwd"] only. */
async function totpUserWithPasswordOnlySession() {
  const email = uniqueEmail('stepup');
  const early = await cookieSession(e, email);
  const login = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
  const other = updateJar({}, login);
  const u = await userWithTotp(e, email, other);
  expect(decodeJwt(early.cookies['__Host-gatehouse']).amr).toEqual(['pwd']);
  return { ...u, jar: { ...early.cookies } as Jar };
}

describe('the gate: browsers and API clients', () => {
  it('require = ["mfa"]: a browser without mfa is sent (303) to the step-up page with return_to; the origin is not called', async () => {
    const { cookies } = await cookieSession(e);
    const seen = origin.seen.length;
    const r = await call('/secure/page?x=1', { env: e, cookies, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/auth/step-up?return_to=${encodeURIComponent('https://gate.example.com/secure/page?x=1')}`);
    expect(origin.seen.length).toBe(seen);
  });

  it('an API client gets 401 insufficient_user_authentication with acr_values (RFC 9470)', async () => {
    const t = await registerUser(undefined, undefined, e);
    const r = await call('/secure/api', { env: e, headers: bearer(t.access_token) });
    expect(r.status).toBe(401);
    const challenge = r.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer error="insufficient_user_authentication", error_description="[^"]+", acr_values="mfa"$/);
    expect(await r.json()).toMatchObject({ error: 'insufficient_user_authentication', acr_values: 'mfa', step_up_url: `https://gate.example.com/auth/step-up?return_to=${encodeURIComponent('https://gate.example.com/secure/api')}` });
  });

  it('forward-auth answers the same 401 (never a redirect), for browsers too', async () => {
    const { cookies } = await cookieSession(e);
    const r = await call('/auth/verify', { env: e, cookies, headers: { ...NAV, 'x-original-uri': '/secure/x' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('error="insufficient_user_authentication"');
    expect(r.headers.get('www-authenticate')).toContain('acr_values="mfa"');
    expect(r.headers.get('x-auth-user-id')).toBeNull();
    const open = await call('/auth/verify', { env: e, cookies, headers: { 'x-original-uri': '/open/x' } });
    expect(open.status).toBe(200);
  });

  it('max_auth_age: an old sign-in gets max_age (no acr_values); a fresh one passes', async () => {
    const { cookies } = await cookieSession(e);
    expect((await call('/fresh/x', { env: e, cookies })).status).toBe(200);
    const old = await agedJar(e, { ...cookies }, 1000);
    const r = await call('/fresh/x', { env: e, headers: bearer(old['__Host-gatehouse']!) });
    expect(r.status).toBe(401);
    const challenge = r.headers.get('www-authenticate')!;
    expect(challenge).toContain('max_age=300');
    expect(challenge).not.toContain('acr_values');
    expect(await r.json()).toMatchObject({ error: 'insufficient_user_authentication', max_age: 300 });
    const nav = await call('/fresh/x', { env: e, cookies: old, headers: NAV });
    expect(nav.status).toBe(303);
    expect(nav.headers.get('location')).toMatch(/^\/auth\/step-up\?return_to=/);
  });

  it('a signed-in user with amr mfa passes, and the origin sees X-Auth-Amr', async () => {
    const u = await userWithTotp(e);
    const r = await call('/secure/x', { env: e, cookies: u.jar });
    expect(r.status).toBe(200);
    expect(origin.seen.at(-1)!.headers['x-auth-amr']).toBe('pwd,otp,mfa');
  });

  it('require = ["passkey"]: amr mfa is not enough (acr_values="passkey")', async () => {
    const u = await userWithTotp(e);
    const r = await call('/keys/x', { env: e, headers: bearer(u.jar['__Host-gatehouse']!) });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('acr_values="passkey"');
  });
});

describe('the step-up page', () => {
  it('after a recent password sign-in asks only for a code; the code steps the session up and goes back', async () => {
    const u = await totpUserWithPasswordOnlySession();
    const sid = decodeJwt(u.jar['__Host-gatehouse']!).sid;
    const back = 'https://gate.example.com/secure/page?x=1';
    const page = await call(`/auth/step-up?return_to=${encodeURIComponent(back)}`, { env: e, cookies: u.jar, headers: NAV });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('name="code"');
    expect(html).not.toContain('name="password"');
    const r = await call('/auth/step-up', { env: e, cookies: u.jar, headers: NAV, form: { code: totpCode(u.secret, 1), return_to: back } });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/secure/page?x=1');
    updateJar(u.jar, r);
    expect(setCookies(r).has('__Secure-gatehouse-refresh')).toBe(false); // same session, same refresh token
    const claims = decodeJwt(u.jar['__Host-gatehouse']!);
    expect(claims.sid).toBe(sid);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    const row = await sessionRow<{ amr: string; auth_time: number }>('SELECT amr, auth_time FROM sessions WHERE id = ?', [sid]);
    expect(row).toEqual({ amr: '["pwd","otp","mfa"]', auth_time: claims.auth_time });
    expect((await call('/secure/page', { env: e, cookies: u.jar })).status).toBe(200);
    // A refresh keeps the stepped-up amr.
    const refreshed = await call('/auth/refresh', { env: e, cookies: u.jar, method: 'POST' });
    expect(decodeJwt(setCookies(refreshed).get('__Host-gatehouse')!.value).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('after an old sign-in asks for password and code; a wrong password is refused on the page', async () => {
    const u = await totpUserWithPasswordOnlySession();
    const old = await agedJar(e, u.jar, 3600);
    const html = await (await call('/auth/step-up?return_to=%2Fsecure', { env: e, cookies: old, headers: NAV })).text();
    expect(html).toContain('name="password"');
    expect(html).toContain('name="code"');
    const wrong = await call('/auth/step-up', { env: e, cookies: old, headers: NAV, form: { password: 'not the password at all', code: totpCode(u.secret, 1), return_to: '/secure' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('The password is incorrect.');
    const missing = await call('/auth/step-up', { env: e, cookies: old, headers: NAV, form: { code: totpCode(u.secret, 1), return_to: '/secure' } });
    expect(missing.status).toBe(400);
    const ok = await call('/auth/step-up', { env: e, cookies: old, headers: NAV, form: { password: GOOD_PASSWORD, code: totpCode(u.secret, 1), return_to: '/secure' } });
    expect(ok.status).toBe(303);
    expect(decodeJwt(updateJar(old, ok)['__Host-gatehouse']!).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('a wrong or reused code is refused and nothing changes', async () => {
    const u = await totpUserWithPasswordOnlySession();
    const sid = decodeJwt(u.jar['__Host-gatehouse']!).sid;
    const r = await call('/auth/step-up', { env: e, cookies: u.jar, json: { code: u.enrolCode } });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_credentials' });
    expect((await sessionRow<{ amr: unknown }>('SELECT amr FROM sessions WHERE id = ?', [sid]))?.amr).toBe('["pwd"]');
  });

  it('an API client steps up with its bearer token and gets a new access token', async () => {
    const email = uniqueEmail('stepup-api');
    const early = await registerUser(email, undefined, e);
    const login = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
    const u = await userWithTotp(e, email, updateJar({}, login));
    const r = await call('/auth/step-up', { env: e, headers: bearer(early.access_token), json: { code: totpCode(u.secret, 1) } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { access_token: string; amr: string[] };
    expect(body.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect((await call('/secure/x', { env: e, headers: bearer(body.access_token) })).status).toBe(200);
  });

  it('a user without a second factor, sent by a route that requires one, is told to set one up', async () => {
    const { cookies } = await cookieSession(e);
    const r = await call(`/auth/step-up?return_to=${encodeURIComponent('/secure/x')}`, { env: e, cookies, headers: NAV });
    expect(r.status).toBe(403);
    const html = await r.text();
    expect(html).toContain('needs a second factor');
    expect(html).toContain('href="/auth/account/totp"');
  });

  it('without a session the page sends the browser to sign in, and back to the step-up', async () => {
    const r = await call('/auth/step-up?return_to=%2Fsecure', { env: e, headers: NAV });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe(`/auth/login?return_to=${encodeURIComponent('/auth/step-up?return_to=%2Fsecure')}`);
  });
});

describe('ROUTES settings', () => {
  const base = { ENVIRONMENT: 'development' };
  it.each([
    [[{ path: '/a', origin: 'https://a.example', auth: 'optional', require: ['mfa'] }], 'require and max_auth_age need auth = "required"'],
    [[{ path: '/a', origin: 'https://a.example', auth: 'required', require: ['sms'] }], 'require holds "mfa" and/or "passkey"'],
    [[{ path: '/a', origin: 'https://a.example', auth: 'required', require: [] }], 'require must name at least one'],
    [[{ path: '/a', origin: 'https://a.example', auth: 'required', max_auth_age: 10 }], 'max_auth_age must be at least 60'],
    [[{ path: '/a', origin: 'https://a.example', auth: 'required', max_auth_age: '300' }], 'max_auth_age must be a number of seconds'],
  ])('refuses %j', (routes, message) => {
    const result = parseConfig({ ...base, ROUTES: JSON.stringify(routes) });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.setting).toBe('ROUTES');
    expect(!result.ok && result.error.message).toContain(message);
  });
});
