/**
 * Who gets through a proxied route: sign-in redirects and 401s, transparent refresh for
 * browser navigations, `allow` lists, cross-site refusal of cookie-authenticated writes, the
 * HTTPS redirect and the gateway's headers on its own refusals. Refused requests never reach
 * the origin.
 */
import { describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { bearer, call, makeEnv, PUBLIC_URL, registerUser, setCookies, testKey, uniqueEmail } from '../support/helpers';
import { cookieSession, promote, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { sessionExec } from '../support/user-sessions-store';

const origin = recordingOrigin();
const env = proxyEnv(
  [
    { path: '/app', origin: 'service:O', auth: 'required' },
    { path: '/ops', origin: 'service:O', auth: 'required', allow: { roles: ['ops'] } },
    { path: '/staff', origin: 'service:O', auth: 'required', allow: { domains: ['staff.example'], emails: ['boss@example.com'] } },
  ],
  { O: origin },
);
const NAVIGATE = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'none' };

describe('unauthenticated requests', () => {
  it('a browser navigation is sent to sign in with the original URL', async () => {
    origin.seen.length = 0;
    const r = await call('/app/reports?year=2026', { env, headers: NAVIGATE });
    expect(r.status).toBe(302);
    const location = new URL(r.headers.get('location')!, PUBLIC_URL);
    expect(location.pathname).toBe('/auth/login');
    expect(location.searchParams.get('return_to')).toBe('https://gate.example.com/app/reports?year=2026');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('strict-transport-security')).toContain('max-age=');
    expect(origin.seen).toHaveLength(0);
  });

  it('an API request gets 401 JSON with WWW-Authenticate and the gateway headers', async () => {
    origin.seen.length = 0;
    const r = await call('/app/data', { env, headers: { accept: 'application/json' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    expect(origin.seen).toHaveLength(0);
  });

  it('a revoked bearer token is refused', async () => {
    origin.seen.length = 0;
    const user = await registerUser(undefined, undefined, env);
    expect((await call('/auth/logout', { env, method: 'POST', headers: bearer(user.access_token) })).status).toBe(200);
    const r = await call('/app', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(401);
    expect(origin.seen).toHaveLength(0);
  });
});

describe('expired access cookie during a navigation', () => {
  it('redirects through GET /auth/refresh, which rotates and comes back; then the origin is reached', async () => {
    origin.seen.length = 0;
    const { cookies, email } = await cookieSession(env);
    const keyring = await keyringFromJwks({ keys: [testKey] });
    const me = await call('/auth/me', { env, cookies });
    const { user, session } = (await me.json()) as { user: { id: string; email_verified: boolean; roles: string[] }; session: { id: string } };
    const expired = await issueAccessToken(
      { keyring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
      { userId: user.id, sessionId: session.id, email, emailVerified: user.email_verified, roles: user.roles, amr: ['pwd'], authTime: 0, ttlSeconds: 600 },
      Math.floor(Date.now() / 1000) - 3600,
    );
    const stale = { ...cookies, '__Host-gatehouse': expired.token };

    const r = await call('/app/page?x=1', { env, cookies: { '__Host-gatehouse': expired.token }, headers: NAVIGATE });
    expect(r.status).toBe(302);
    const to = new URL(r.headers.get('location')!, PUBLIC_URL);
    expect(to.pathname).toBe('/auth/refresh');
    expect(to.searchParams.get('return_to')).toBe('https://gate.example.com/app/page?x=1');
    expect(origin.seen).toHaveLength(0);

    // The browser follows it, now sending the refresh cookie too (Path=/auth).
    const refreshed = await call(`${to.pathname}${to.search}`, { env, cookies: stale, headers: NAVIGATE });
    expect(refreshed.status).toBe(303);
    expect(refreshed.headers.get('location')).toBe('/app/page?x=1');
    const set = setCookies(refreshed);
    expect(set.get('__Secure-gatehouse-refresh')!.value).not.toBe(cookies['__Secure-gatehouse-refresh']);
    const fresh = set.get('__Host-gatehouse')!.value;

    const back = await call('/app/page?x=1', { env, cookies: { '__Host-gatehouse': fresh }, headers: NAVIGATE });
    expect(back.status).toBe(200);
    expect(origin.seen).toHaveLength(1);
    expect(origin.seen[0]!.headers['x-auth-user-id']).toBe(user.id);

    // The old refresh token is spent: a second use (past the grace for two tabs refreshing at
    // once, REFRESH_REUSE_GRACE_S) ends the session and goes to sign-in.
    await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 60 WHERE session_id = ?', [session.id]);
    const reuse = await call(`${to.pathname}${to.search}`, { env, cookies: stale, headers: NAVIGATE });
    expect(reuse.status).toBe(303);
    expect(reuse.headers.get('location')).toBe(`/auth/login?return_to=${encodeURIComponent('/app/page?x=1')}`);
  });

  it('without a refresh cookie GET /auth/refresh goes to sign-in, keeping only a safe return_to', async () => {
    const r = await call('/auth/refresh?return_to=https://evil.example/steal', { env, headers: NAVIGATE });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/login?return_to=%2F');
  });

  it('an API request with a stale cookie gets a 401, not a redirect', async () => {
    const r = await call('/app', { env, cookies: { '__Host-gatehouse': 'x.y.z' }, headers: { accept: 'application/json' } });
    expect(r.status).toBe(401);
  });
});

describe('allow lists', () => {
  it('roles: 403 forbidden without the role, through with it', async () => {
    origin.seen.length = 0;
    const email = uniqueEmail('ops');
    const { access_token } = await registerUser(email, undefined, env);
    const r = await call('/ops/deploy', { env, headers: bearer(access_token) });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden' });
    expect(origin.seen).toHaveLength(0);
    const promoted = await promote(env, email, { roles: ['ops'] });
    expect((await call('/ops/deploy', { env, headers: bearer(promoted) })).status).toBe(200);
    expect(origin.seen[0]!.headers['x-auth-roles']).toBe('ops');
  });

  it('emails and domains count only once the email is verified', async () => {
    origin.seen.length = 0;
    const email = `someone-${Date.now()}@staff.example`;
    const { access_token } = await registerUser(email, undefined, env);
    expect((await call('/staff', { env, headers: bearer(access_token) })).status).toBe(403);
    const verified = await promote(env, email, { verified: true });
    expect((await call('/staff', { env, headers: bearer(verified) })).status).toBe(200);
    const outsider = await registerUser(uniqueEmail('outsider'), undefined, env);
    const outsiderVerified = await promote(env, outsider.user.email, { verified: true });
    expect((await call('/staff', { env, headers: bearer(outsiderVerified) })).status).toBe(403);
    expect(origin.seen).toHaveLength(1);
  });
});

describe('cross-site writes', () => {
  it('a cookie-authenticated unsafe request from another site is refused; bearer and same-origin pass', async () => {
    origin.seen.length = 0;
    const { cookies } = await cookieSession(env);
    const access = { '__Host-gatehouse': cookies['__Host-gatehouse'] };
    const cross = await call('/app/transfer', { env, method: 'POST', body: 'amount=1', cookies: access, headers: { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' } });
    expect(cross.status).toBe(403);
    const crossOrigin = await call('/app/transfer', { env, method: 'DELETE', cookies: access, headers: { origin: 'https://evil.example' } });
    expect(crossOrigin.status).toBe(403);
    expect(origin.seen).toHaveLength(0);

    const same = await call('/app/transfer', { env, method: 'POST', body: '{}', cookies: access, headers: { 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' } });
    expect(same.status).toBe(200);
    const user = await registerUser(undefined, undefined, env);
    const api = await call('/app/transfer', { env, method: 'POST', body: '{}', headers: { ...bearer(user.access_token), 'sec-fetch-site': 'cross-site', origin: 'https://other.example' } });
    expect(api.status).toBe(200);
    // A cross-site GET navigation with the cookie is fine (SameSite=Lax sends it anyway).
    expect((await call('/app/page', { env, cookies: access, headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(200);
    expect(origin.seen).toHaveLength(3);
  });
});

describe('edge hygiene', () => {
  it('plain HTTP is redirected to HTTPS in production, keeping the method with 308', async () => {
    const get = await call('http://gate.example.com/app/x?y=1', { env });
    expect(get.status).toBe(301);
    expect(get.headers.get('location')).toBe('https://gate.example.com/app/x?y=1');
    const post = await call('http://gate.example.com/auth/login', { env, json: {} });
    expect(post.status).toBe(308);
  });

  it('localhost in development stays on HTTP; other hosts in development do not', async () => {
    const dev = makeEnv({ ENVIRONMENT: 'development', PUBLIC_URL: 'http://localhost:8787' });
    expect((await call('http://localhost:8787/auth/health', { env: dev })).status).toBe(200);
    // The other loopback name stays on HTTP too, sent to PUBLIC_URL's host (gateway/http-hardening.test.ts).
    const loopback = await call('http://127.0.0.1:8787/auth/health', { env: dev });
    expect(loopback.status).toBe(307);
    expect(loopback.headers.get('location')).toBe('http://localhost:8787/auth/health');
    expect((await call('http://gate.example.com/auth/health', { env: dev })).status).toBe(301);
  });

  it('ROUTES is validated at start-up, naming the setting', async () => {
    for (const routes of [
      [{ path: 'no-slash', origin: 'https://a.example', auth: 'public' }],
      [{ path: '/a', origin: 'ftp://a.example', auth: 'public' }],
      [{ path: '/a', origin: 'https://a.example', auth: 'sometimes' }],
      [{ path: '/a/../b', origin: 'https://a.example', auth: 'public' }],
      [{ path: '/a', origin: 'https://a.example', auth: 'public', allow: { roles: ['x'] } }],
      [{ path: '/A', origin: 'https://a.example', auth: 'public' }, { path: '/a', origin: 'https://b.example', auth: 'public' }],
      [{ path: '/a', origin: 'https://a.example', auth: 'public', extra: 1 }],
    ]) {
      const r = await call('/auth/health', { env: makeEnv({ ROUTES: JSON.stringify(routes) }) });
      expect(r.status, JSON.stringify(routes)).toBe(500);
      expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'ROUTES' });
    }
  });
});
