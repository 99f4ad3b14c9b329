/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an app sends the browser to
 * end-session; the user confirms on a page (a cross-site request alone signs no one out), the
 * session ends through the one sign-out, and the browser goes back to a registered URI only.
 */
import { describe, expect, it } from 'vitest';
import { call, GOOD_PASSWORD, PUBLIC_URL, seedUser, setCookies, testKey, uniqueEmail } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { exchange, grantRows, storeCode, type GrantTokenResponse } from '../support/oauth-grants';
import { decodeJwt } from 'jose';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueIdToken } from '../../../src/tokens/id-token';

/** A browser signed in (cookies), with an app's ID token for its session. */
async function browserWithApp() {
  const user = await seedUser({ email: uniqueEmail('rp-logout'), verified: true });
  const login = await call('/auth/login', { json: { email: user.email, password: GOOD_PASSWORD, session: 'cookie' } });
  expect(login.status).toBe(200);
  const cookies = Object.fromEntries([...setCookies(login)].map(([name, { value }]) => [name, value]));
  const sessionId = decodeJwt(cookies['__Host-gatehouse']!).sid as string;
  const { client, secret } = await seedClient({ postLogoutRedirectUris: ['https://app.example.org/signed-out'] });
  const tokens = await (await exchange(client, secret, await storeCode(user.id, sessionId, client, { scope: 'openid offline_access' }))).json<GrantTokenResponse>();
  return { user, cookies, sessionId, client, idToken: tokens.id_token! };
}

const sessionLive = async (cookies: Record<string, string>) => (await call('/auth/me', { cookies })).status === 200;
const HTML = { accept: 'text/html' };

describe('RP-initiated logout', () => {
  it('a GET asks the signed-in user on a page and ends nothing', async () => {
    const b = await browserWithApp();
    const q = new URLSearchParams({ id_token_hint: b.idToken, post_logout_redirect_uri: 'https://app.example.org/signed-out', state: 'st-1' });
    const r = await call(`/auth/end-session?${q}`, { cookies: b.cookies, headers: { ...HTML, 'sec-fetch-site': 'cross-site' } });
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('Sign out?');
    expect(html).toContain(b.client.name);
    expect(html).toContain('name="confirm" value="yes"');
    // The confirmation's redirect to the app is allowed by the page's form-action.
    expect(r.headers.get('content-security-policy')).toContain('form-action https://app.example.org ');
    expect(await sessionLive(b.cookies)).toBe(true);
  });

  it('the confirmation ends the session and its apps\' grants and goes to the registered URI with state', async () => {
    const b = await browserWithApp();
    const r = await call('/auth/end-session', { cookies: b.cookies, form: { id_token_hint: b.idToken, post_logout_redirect_uri: 'https://app.example.org/signed-out', state: 'st-2', confirm: 'yes' } });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('https://app.example.org/signed-out?state=st-2');
    expect(await sessionLive(b.cookies)).toBe(false);
    expect((await grantRows(b.user.id)).every((g) => g.revoked_at !== null)).toBe(true);
    expect(setCookies(r).get('__Host-gatehouse')?.value ?? '').toBe('');
  });

  it('a cross-site confirmation is refused (403) and ends nothing', async () => {
    const b = await browserWithApp();
    const r = await call('/auth/end-session', { cookies: b.cookies, headers: { 'sec-fetch-site': 'cross-site' }, form: { id_token_hint: b.idToken, confirm: 'yes' } });
    expect(r.status).toBe(403);
    expect(await sessionLive(b.cookies)).toBe(true);
  });

  it('an unregistered post-logout URI gets the signed-out page, never a redirect', async () => {
    const b = await browserWithApp();
    const r = await call('/auth/end-session', { cookies: b.cookies, headers: HTML, form: { id_token_hint: b.idToken, post_logout_redirect_uri: 'https://evil.example/', state: 's', confirm: 'yes' } });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('You are signed out');
    expect(await sessionLive(b.cookies)).toBe(false);
  });

  it('a registered URI needs the client named (by client_id or the hint): without either, no redirect', async () => {
    const b = await browserWithApp();
    const withId = await call(`/auth/end-session?${new URLSearchParams({ client_id: b.client.id, post_logout_redirect_uri: 'https://app.example.org/signed-out' })}`);
    expect(withId.status).toBe(303);
    expect(withId.headers.get('location')).toBe('https://app.example.org/signed-out');
    const anonymous = await call(`/auth/end-session?${new URLSearchParams({ post_logout_redirect_uri: 'https://app.example.org/signed-out' })}`, { headers: HTML });
    expect(anonymous.status).toBe(200);
  });

  it('a client anyone could register (dynamic) is sent back only with its ID token as hint: its client_id alone vouches for nothing', async () => {
    const { client, secret } = await seedClient({ source: 'dynamic', postLogoutRedirectUris: ['https://anyone.example/landing'] });
    const bare = await call(`/auth/end-session?${new URLSearchParams({ client_id: client.id, post_logout_redirect_uri: 'https://anyone.example/landing', state: 's' })}`, { headers: HTML });
    expect(bare.status).toBe(200);
    expect(bare.headers.get('location')).toBeNull();
    expect(await bare.text()).toContain('You are signed out');
    // With an ID token the gateway issued to it, the URI is the one its relying party registered.
    const user = await seedUser({ email: uniqueEmail('rp-logout'), verified: true });
    const login = await call('/auth/login', { json: { email: user.email, password: GOOD_PASSWORD, session: 'cookie' } });
    const sid = decodeJwt(setCookies(login).get('__Host-gatehouse')!.value).sid as string;
    const tokens = await (await exchange(client, secret, await storeCode(user.id, sid, client, { scope: 'openid' }))).json<GrantTokenResponse>();
    const hinted = await call(`/auth/end-session?${new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://anyone.example/landing' })}`);
    expect(hinted.status).toBe(303);
    expect(hinted.headers.get('location')).toBe('https://anyone.example/landing');
  });

  it('a browser with no session goes back at once: there is nothing to end', async () => {
    const b = await browserWithApp();
    const r = await call(`/auth/end-session?${new URLSearchParams({ id_token_hint: b.idToken, post_logout_redirect_uri: 'https://app.example.org/signed-out', state: 'x' })}`);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('https://app.example.org/signed-out?state=x');
    expect(await sessionLive(b.cookies)).toBe(true);
  });

  it('an id_token_hint we did not issue, or a client_id that is not its audience, is invalid_request', async () => {
    const b = await browserWithApp();
    const forged = `${b.idToken.slice(0, -4)}AAAA`;
    const bad = await call(`/auth/end-session?${new URLSearchParams({ id_token_hint: forged })}`, { cookies: b.cookies });
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: string }>()).error).toBe('invalid_request');
    const other = await call(`/auth/end-session?${new URLSearchParams({ id_token_hint: b.idToken, client_id: 'cli_other' })}`, { cookies: b.cookies });
    expect(other.status).toBe(400);
    expect(await sessionLive(b.cookies)).toBe(true);
  });

  it('an expired id_token_hint still names the client (the app kept it since sign-in)', async () => {
    const b = await browserWithApp();
    const keyring = await keyringFromJwks({ keys: [testKey] });
    const longAgo = Math.floor(Date.now() / 1000) - 86_400;
    const expired = await issueIdToken(keyring, { issuer: PUBLIC_URL, subject: b.user.id, clientId: b.client.id, sessionId: b.sessionId, authTime: longAgo, amr: ['pwd'], nonce: null, accessToken: 'x', ttlSeconds: 600 }, longAgo);
    const r = await call('/auth/end-session', { cookies: b.cookies, form: { id_token_hint: expired, post_logout_redirect_uri: 'https://app.example.org/signed-out', confirm: 'yes' } });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('https://app.example.org/signed-out');
  });
});
