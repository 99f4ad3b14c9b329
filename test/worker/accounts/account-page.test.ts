/**
 * `GET /auth/account` and its form actions: works with plain HTML forms (no JavaScript),
 * sends browsers without a session to sign in, and ends sessions for real.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, bearer, call, countRows, GOOD_PASSWORD, registerUser, revokedKeys, setCookies, stateSnapshot, uniqueEmail } from '../support/helpers';
import { sessionRows } from '../support/user-sessions-store';

const NAV = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' };
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

/** Signs in with a form post as a browser would; returns the cookie jar. */
async function browserSignIn(email: string, userAgent = FIREFOX) {
  const r = await call('/auth/login', { form: { email, password: GOOD_PASSWORD }, headers: { ...NAV, 'user-agent': userAgent } });
  expect(r.status).toBe(303);
  const jar = setCookies(r);
  return { '__Host-gatehouse': jar.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': jar.get('__Secure-gatehouse-refresh')!.value };
}

async function sessionIds(userId: string, live = true) {
  const results = await sessionRows<{ id: string }>(`SELECT id FROM sessions WHERE user_id = ? ${live ? 'AND revoked_at IS NULL' : ''} ORDER BY created_at`, [userId]);
  return results.map((r) => r.id);
}

describe('GET /auth/account', () => {
  it('shows profile, sign-in methods and sessions with device and last use, with plain forms and a strict CSP', async () => {
    const user = await registerUser();
    await baseEnv.DB.prepare("INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ('github', ?, ?, ?, 1700000000)")
      .bind(`gh-${user.user.id}`, user.user.id, user.user.email)
      .run();
    await browserSignIn(user.user.email, IPHONE);
    const cookies = await browserSignIn(user.user.email);
    const r = await call('/auth/account', { cookies, headers: NAV });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/html');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    const html = await r.text();
    expect(html).toContain(user.user.email);
    expect(html).toContain('Email and password');
    expect(html).toContain('data-provider="github"');
    expect(html).toContain('Firefox on Linux');
    expect(html).toContain('Safari on iOS');
    expect(html).toContain('(this device)');
    // Scripts run only under the page's nonce: the show-password toggle (inline) and the passkey
    // script of our own origin; the passkey script may call our JSON endpoints.
    expect(csp).toContain("connect-src 'self';");
    const scripts = html.match(/<script[^>]*>/g) ?? [];
    expect(scripts.length).toBeGreaterThan(0);
    for (const tag of scripts) expect(tag).toMatch(new RegExp(`^<script nonce="${nonce}"( src="/auth/passkeys/client\\.js" defer="")?>$`));
    expect(scripts).toContain(`<script nonce="${nonce}" src="/auth/passkeys/client.js" defer="">`);
    // Every live session has a sign-out form; plus sign out everywhere.
    for (const id of await sessionIds(user.user.id)) expect(html).toContain(`action="/auth/account/sessions/${id}/end"`);
    expect(html).toContain('action="/auth/account/logout-all"');
    expect(html).toMatch(/<time datetime="\d{4}-\d\d-\d\dT/);
    // No token, hash or password ever appears in the page.
    expect(html).not.toContain(cookies['__Host-gatehouse']);
    expect(html).not.toContain(cookies['__Secure-gatehouse-refresh']);
    expect(html).not.toContain('scrypt');
  });

  it('escapes a hostile user agent and name', async () => {
    const email = uniqueEmail();
    await call('/auth/register', { json: { email, password: GOOD_PASSWORD, name: '<img src=x onerror=alert(1)>' } });
    const cookies = await browserSignIn(email, '<script>alert(1)</script> Firefox/1');
    const html = await (await call('/auth/account', { cookies, headers: NAV })).text();
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('sends a browser without a session to sign in and back (302), through refresh when it still has a refresh cookie', async () => {
    const none = await call('/auth/account', { headers: NAV });
    expect(none.status).toBe(302);
    expect(none.headers.get('location')).toBe('/auth/login?return_to=%2Fauth%2Faccount');

    const bad = await call('/auth/account', { headers: NAV, cookies: { '__Host-gatehouse': 'not.a.token' } });
    expect(bad.status).toBe(302);
    expect(bad.headers.get('location')).toBe('/auth/login?return_to=%2Fauth%2Faccount');

    const user = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    const expired = await call('/auth/account', { headers: NAV, cookies: { '__Secure-gatehouse-refresh': cookies['__Secure-gatehouse-refresh'] } });
    expect(expired.status).toBe(302);
    expect(expired.headers.get('location')).toBe('/auth/refresh?return_to=%2Fauth%2Faccount');
  });

  it('answers API clients with 401 JSON, and works for them with a bearer token', async () => {
    const r = await call('/auth/account', { headers: { accept: 'application/json' } });
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_token');
    const user = await registerUser();
    const ok = await call('/auth/account', { headers: bearer(user.access_token) });
    expect(ok.status).toBe(200);
  });

  it('a revoked session is sent to sign in, not shown', async () => {
    const user = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    await call('/auth/logout-all', { method: 'POST', headers: bearer(user.access_token) });
    const r = await call('/auth/account', { cookies: { '__Host-gatehouse': cookies['__Host-gatehouse'] }, headers: NAV });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toContain('/auth/login');
  });
});

describe('account form actions', () => {
  it('signs out another session with a form post (303 back, session ended in D1 and KV, this one intact)', async () => {
    const user = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    const [apiSession] = await sessionIds(user.user.id);
    const r = await call(`/auth/account/sessions/${apiSession}/end`, { method: 'POST', form: {}, cookies, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/account?done=session_ended');
    expect(r.headers.get('set-cookie')).toBeNull();
    expect(await sessionIds(user.user.id)).toHaveLength(1);
    expect(await revokedKeys()).toContain(`sid:${apiSession}`);
    expect((await call('/auth/me', { headers: bearer(user.access_token) })).status).toBe(401);
    const page = await call('/auth/account?done=session_ended', { cookies, headers: NAV });
    expect(await page.text()).toContain('That session has been signed out.');
  });

  it('signing out this session clears the cookies and goes to the sign-in page', async () => {
    const user = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    const current = (await sessionIds(user.user.id)).at(-1)!;
    const r = await call(`/auth/account/sessions/${current}/end`, { method: 'POST', form: {}, cookies, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/login?done=signed_out');
    const page = await call(r.headers.get('location')!);
    expect(await page.text()).toMatch(/<p class="banner" role="status" id="notice">You have been signed out\.<\/p>/);
    const jar = setCookies(r);
    expect(jar.get('__Host-gatehouse')?.value).toBe('');
    expect(jar.get('__Secure-gatehouse-refresh')?.value).toBe('');
    expect(await revokedKeys()).toContain(`sid:${current}`);
  });

  it('signs out everywhere', async () => {
    const user = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    await browserSignIn(user.user.email, IPHONE);
    const r = await call('/auth/account/logout-all', { method: 'POST', form: {}, cookies, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/login?done=signed_out_everywhere');
    const page = await (await call(r.headers.get('location')!)).text();
    expect(page).toContain('<p class="banner" role="status" id="notice">You have been signed out on every device.</p>');
    // Only known values show a notice; nothing from the URL is echoed.
    const forged = await (await call('/auth/login?done=%3Cb%3Ehacked%3C%2Fb%3E')).text();
    expect(forged).not.toContain('role="status"');
    expect(forged).not.toContain('hacked');
    expect((await (await call('/auth/login?done=constructor')).text())).not.toContain('role="status"');
    expect(setCookies(r).get('__Host-gatehouse')?.value).toBe('');
    expect(await sessionIds(user.user.id)).toEqual([]);
    const keys = await revokedKeys();
    for (const id of await sessionIds(user.user.id, false)) expect(keys).toContain(`sid:${id}`);
  });

  it("refuses cross-site form posts and another user's session id, changing nothing", async () => {
    const user = await registerUser();
    const other = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    const before = await stateSnapshot();
    const cross = await call('/auth/account/logout-all', { method: 'POST', form: {}, cookies, headers: { ...NAV, 'sec-fetch-site': 'cross-site' } });
    expect(cross.status).toBe(403);
    const noHeaders = await call('/auth/account/logout-all', { method: 'POST', form: {}, cookies, headers: { origin: 'https://evil.example' } });
    expect(noHeaders.status).toBe(403);
    const [otherSession] = await sessionIds(other.user.id);
    const foreign = await call(`/auth/account/sessions/${otherSession}/end`, { method: 'POST', form: {}, cookies, headers: NAV });
    expect(foreign.status).toBe(404);
    expect(await stateSnapshot()).toEqual(before);
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', other.user.id)).toBe(1);
  });

  it('a form post without a session is sent to sign in', async () => {
    const r = await call('/auth/account/logout-all', { method: 'POST', form: {}, headers: NAV });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/auth/login?return_to=%2Fauth%2Faccount');
  });
});
