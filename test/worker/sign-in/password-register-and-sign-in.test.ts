import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { CURRENT_SCRYPT, hashPassword } from '../../../src/auth/password-hash';
import { bearer, call, countRows, GOOD_PASSWORD, makeEnv, registerUser, setCookies, stateSnapshot, uniqueEmail } from '../support/helpers';

/** A hash made with the parameters new hashes use (production's are pinned in password-hashing-and-policy). */
const CURRENT_HASH_PREFIX = new RegExp(`^scrypt\\$N=${CURRENT_SCRYPT.N},r=${CURRENT_SCRYPT.r},p=${CURRENT_SCRYPT.p}\\$`);

describe('POST /auth/register', () => {
  it('creates a user, a session and returns token-mode JSON by default', async () => {
    const email = uniqueEmail();
    const r = await call('/auth/register', { json: { email: `  ${email.toUpperCase()} `, password: GOOD_PASSWORD, name: 'Ada' } });
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = (await r.json()) as Record<string, unknown> & { user: Record<string, unknown> };
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type', 'user']);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(600);
    expect(body.user).toMatchObject({ email, email_verified: false, name: 'Ada', roles: [] });
    expect(r.headers.getSetCookie()).toEqual([]);
    const row = await env.DB.prepare('SELECT email, password_hash, roles FROM users WHERE id = ?').bind(body.user.id).first<{ email: string; password_hash: string; roles: string }>();
    expect(row?.email).toBe(email);
    expect(row?.password_hash).toMatch(CURRENT_HASH_PREFIX);
    expect(row?.roles).toBe('[]');
    expect(await countRows('sessions', 'user_id = ?', body.user.id)).toBe(1);
    expect(await countRows('auth_events', "event = 'register' AND outcome = 'success' AND user_id = ?", body.user.id)).toBe(1);
  });

  it('names the user\'s object and stores only the SHA-256 of the secret part of the refresh token', async () => {
    const t = await registerUser();
    const [routing, secret] = t.refresh_token.split('.');
    expect(routing).toBe(t.user.id);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret)));
    const hash = btoa(String.fromCharCode(...digest)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    expect(await countRows('sessions', 'refresh_hash = ?', hash)).toBe(1);
    expect(await countRows('sessions', 'refresh_hash = ? OR refresh_hash = ?', t.refresh_token, secret!)).toBe(0);
  });

  it('cookie mode sets the two cookies and keeps tokens out of the body', async () => {
    const r = await call('/auth/register', { json: { email: uniqueEmail(), password: GOOD_PASSWORD, session: 'cookie' } });
    expect(r.status).toBe(201);
    const text = await r.text();
    expect(text).not.toMatch(/access_token|refresh_token/);
    const cookies = setCookies(r);
    const access = cookies.get('__Host-gatehouse')!;
    const refresh = cookies.get('__Secure-gatehouse-refresh')!;
    expect(access.attributes).toMatch(/Path=\//);
    expect(access.attributes).toMatch(/HttpOnly/);
    expect(access.attributes).toMatch(/Secure/);
    expect(access.attributes).toMatch(/SameSite=Lax/);
    expect(access.attributes).not.toMatch(/Domain=/i);
    expect(refresh.attributes).toMatch(/Path=\/auth/);
    expect(refresh.attributes).toMatch(/HttpOnly/);
    expect(refresh.attributes).toMatch(/Secure/);
    const me = await call('/auth/me', { cookies: { '__Host-gatehouse': access.value } });
    expect(me.status).toBe(200);
  });

  it('refuses a duplicate email, whatever its case, with 409 conflict', async () => {
    const email = uniqueEmail();
    await registerUser(email);
    const before = await stateSnapshot();
    const r = await call('/auth/register', { json: { email: email.toUpperCase(), password: GOOD_PASSWORD } });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: 'conflict' });
    expect(await stateSnapshot()).toEqual(before);
  });

  it.each([
    ['short', 'short pass', /at least 12/],
    ['common', 'password1234', /too common/],
    ['too long', 'x'.repeat(257), /at most 256/],
  ])('refuses a %s password with 400 and stores nothing', async (_name, password, message) => {
    const before = await stateSnapshot();
    const r = await call('/auth/register', { json: { email: uniqueEmail(), password } });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: string; error_description: string };
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toMatch(message);
    expect(await stateSnapshot()).toEqual(before);
  });

  it('honours PASSWORD_MIN_LENGTH', async () => {
    const e = makeEnv({ PASSWORD_MIN_LENGTH: '20' });
    const r = await call('/auth/register', { env: e, json: { email: uniqueEmail(), password: 'nineteen characters' } });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error_description: string }).error_description).toMatch(/at least 20/);
  });

  it('honours REGISTRATION=closed and PASSWORD_LOGIN=disabled', async () => {
    const before = await stateSnapshot();
    for (const e of [makeEnv({ REGISTRATION: 'closed' }), makeEnv({ PASSWORD_LOGIN: 'disabled' })]) {
      const r = await call('/auth/register', { env: e, json: { email: uniqueEmail(), password: GOOD_PASSWORD } });
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(await stateSnapshot()).toEqual(before);
  });

  it('enforces ALLOWED_EMAIL_DOMAINS on the exact domain', async () => {
    const e = makeEnv({ ALLOWED_EMAIL_DOMAINS: 'corp.com' });
    const ok = await call('/auth/register', { env: e, json: { email: `a-${Date.now()}@corp.com`, password: GOOD_PASSWORD } });
    expect(ok.status).toBe(201);
    for (const email of [`b-${Date.now()}@evil.com`, `c-${Date.now()}@sub.corp.com`, `d-${Date.now()}@corp.com.evil.com`]) {
      const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
      expect(r.status).toBe(403);
    }
  });

  it('never grants roles from the request or ADMIN_EMAILS to an unverified email', async () => {
    const email = uniqueEmail('admin');
    const e = makeEnv({ ADMIN_EMAILS: email });
    const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(201);
    expect(((await r.json()) as { user: { roles: string[] } }).user.roles).toEqual([]);
    for (const field of ['roles', 'email_verified']) {
      const bad = await call('/auth/register', { json: { email: uniqueEmail(), password: GOOD_PASSWORD, [field]: field === 'roles' ? ['admin'] : true } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error_description: string }).error_description).toContain(field);
    }
  });

  it('HTML form registration redirects (303) to a safe return_to with cookies', async () => {
    const r = await call('/auth/register', {
      form: { email: uniqueEmail(), password: GOOD_PASSWORD, return_to: '/app/dashboard?x=1' },
      headers: { origin: 'https://gate.example.com' },
    });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/app/dashboard?x=1');
    expect(setCookies(r).has('__Host-gatehouse')).toBe(true);
    const evil = await call('/auth/register', {
      form: { email: uniqueEmail(), password: GOOD_PASSWORD, return_to: '//evil.com/x' },
      headers: { origin: 'https://gate.example.com' },
    });
    expect(evil.headers.get('location')).toBe('/');
  });

  it('HTML form errors re-render the page with the message (escaped) and no session', async () => {
    const before = await stateSnapshot();
    const r = await call('/auth/register', {
      form: { email: uniqueEmail(), password: 'short', return_to: '/"><script>' },
      headers: { origin: 'https://gate.example.com' },
    });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    const html = await r.text();
    expect(html).toContain('at least 12 characters');
    expect(html).not.toContain('<script>');
    expect(await stateSnapshot()).toEqual(before);
  });

  it('a failed registration form post renders the create-account view again, with the email echoed there', async () => {
    const email = uniqueEmail();
    const headers = { 'sec-fetch-site': 'same-origin' };
    const r = await call('/auth/register', { form: { email, password: 'short', return_to: '/app' }, headers });
    expect(r.status).toBe(400);
    const html = await r.text();
    expect(html).toContain('<h1>Create account</h1>');
    expect(html).not.toContain('id="login-email"'); // one form per view
    expect(html).toMatch(/<div class="error" role="alert" id="form-error">The password must be at least 12 characters long\.<\/div>/);
    expect(html).toMatch(new RegExp(`<input id="register-email"[^>]* value="${email}"[^>]*aria-describedby="form-error"`));
    expect(html).toMatch(/<input id="register-password"[^>]*aria-describedby="form-error register-password-hint"/);
    expect(html).toContain('<input type="hidden" name="return_to" value="/app"/>');

    // A failed sign-in renders the sign-in view again, with its error and email.
    await registerUser(email);
    const bad = await call('/auth/login', { form: { email, password: 'wrong wrong wrong' }, headers });
    expect(bad.status).toBe(401);
    const page = await bad.text();
    expect(page).toContain('<h1>Sign in</h1>');
    expect(page).not.toContain('id="register-email"');
    expect(page).toContain('The email or password is incorrect.');
    expect(page).toMatch(new RegExp(`<input id="login-email"[^>]* value="${email}"[^>]*aria-describedby="form-error"`));
  });
});

describe('POST /auth/login', () => {
  it('signs in with the right password (any email case) and records the event', async () => {
    const email = uniqueEmail();
    const reg = await registerUser(email);
    const r = await call('/auth/login', { json: { email: email.toUpperCase(), password: GOOD_PASSWORD } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { access_token: string; user: { id: string } };
    expect(body.user.id).toBe(reg.user.id);
    expect((await call('/auth/me', { headers: bearer(body.access_token) })).status).toBe(200);
    expect(await countRows('sessions', 'user_id = ?', reg.user.id)).toBe(2);
    // The registration signed in too (its own event); this sign-in is one more, named by its endpoint.
    expect(await countRows('auth_events', "event = 'login' AND outcome = 'success' AND user_id = ?", reg.user.id)).toBe(2);
    expect(await countRows('auth_events', "event = 'login' AND outcome = 'success' AND user_id = ? AND detail LIKE '%password_login%'", reg.user.id)).toBe(1);
  });

  it('answers unknown email and wrong password identically', async () => {
    const email = uniqueEmail();
    await registerUser(email);
    const before = await stateSnapshot();
    const wrong = await call('/auth/login', { json: { email, password: 'not the password at all' } });
    const unknown = await call('/auth/login', { json: { email: uniqueEmail('nobody'), password: 'not the password at all' } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const [a, b] = [await wrong.text(), await unknown.text()];
    expect(a).toBe(b);
    expect(JSON.parse(a)).toEqual({ error: 'invalid_credentials', error_description: 'The email or password is incorrect.' });
    expect(wrong.headers.get('www-authenticate')).toBe(unknown.headers.get('www-authenticate'));
    const after = await stateSnapshot();
    expect(after).toEqual(before);
    expect(await countRows('auth_events', "event = 'login' AND outcome = 'failure'")).toBeGreaterThanOrEqual(2);
  });

  it('re-hashes a password stored with old parameters on sign-in', async () => {
    const email = uniqueEmail();
    const reg = await registerUser(email);
    const old = await hashPassword(GOOD_PASSWORD, { N: 1024, r: 8, p: 1 });
    await env.DB.prepare('UPDATE users SET password_hash = ? WHERE id = ?').bind(old, reg.user.id).run();
    const r = await call('/auth/login', { json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(200);
    const row = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?').bind(reg.user.id).first<{ password_hash: string }>();
    expect(row?.password_hash).toMatch(CURRENT_HASH_PREFIX);
  });

  it('accepts the NFKC-equivalent spelling of a password', async () => {
    const email = uniqueEmail();
    await registerUser(email, 'ｆｕｌｌｗｉｄｔｈ passphrase');
    const r = await call('/auth/login', { json: { email, password: 'fullwidth passphrase' } });
    expect(r.status).toBe(200);
  });

  it('refuses a disabled user', async () => {
    const email = uniqueEmail();
    const reg = await registerUser(email);
    await env.DB.prepare('UPDATE users SET disabled_at = 1 WHERE id = ?').bind(reg.user.id).run();
    const r = await call('/auth/login', { json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(403);
    expect(await countRows('sessions', 'user_id = ?', reg.user.id)).toBe(1);
  });

  it('honours PASSWORD_LOGIN=disabled', async () => {
    const email = uniqueEmail();
    await registerUser(email);
    const r = await call('/auth/login', { env: makeEnv({ PASSWORD_LOGIN: 'disabled' }), json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(403);
  });

  it('HTML form sign-in: 303 with cookies, or the page again with an error', async () => {
    const email = uniqueEmail();
    await registerUser(email);
    const headers = { 'sec-fetch-site': 'same-origin' };
    const ok = await call('/auth/login', { form: { email, password: GOOD_PASSWORD, return_to: '/after' }, headers });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/after');
    expect(setCookies(ok).has('__Secure-gatehouse-refresh')).toBe(true);
    const bad = await call('/auth/login', { form: { email, password: 'wrong wrong wrong' }, headers });
    expect(bad.status).toBe(401);
    const html = await bad.text();
    expect(html).toContain('The email or password is incorrect.');
    expect(bad.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(bad.headers.getSetCookie()).toEqual([]);
  });
});

describe('GET /auth/login', () => {
  it('renders an accessible page with the password forms and a strict CSP', async () => {
    const r = await call('/auth/login?return_to=%2Fapp');
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).not.toMatch(/unsafe-inline/);
    const html = await r.text();
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toMatch(/<label for="login-email">/);
    expect(html).toContain('value="/app"');
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    // Only nonce'd scripts: the show-password toggle (inline) and the passkey script of our own origin.
    expect(html.match(/<script[^>]*>/g)).toEqual([`<script nonce="${nonce}" src="/auth/passkeys/client.js" defer="">`, `<script nonce="${nonce}">`]);
    expect(html).not.toMatch(/https?:\/\/(?!gate\.example\.com)[a-z]/); // no third-party resources
  });
});
