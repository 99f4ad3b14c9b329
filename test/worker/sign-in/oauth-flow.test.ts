/**
 * The OAuth flow against a fake OpenID Connect provider: the authorization request, the flow
 * cookie, the callback's refusals (state, provider, replay, expiry, provider errors) and a
 * successful sign-in with its stored state.
 */
import { env } from 'cloudflare:test';
import { base64url, decodeProtectedHeader, EncryptJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hkdf } from '../../../src/crypto/derive-key';
import { call, countRows, makeEnv, PUBLIC_URL, setCookies, stateSnapshot, testKey, type TestEnv } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { callback, FLOW_COOKIE, sessionCookies, signIn, startLogin } from '../support/oauth-helpers';

let idp: FakeOidcProvider;
let oidcEnv: TestEnv;

beforeAll(async () => {
  installFakeNetwork();
  idp = await FakeOidcProvider.create();
  oidcEnv = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, OIDC_NAME: 'Acme SSO' });
});

let n = 0;
const freshUser = (verified: boolean | string = true) => {
  n += 1;
  idp.user = { sub: `flow-${n}-${Date.now()}`, email: `flow-${n}-${Date.now()}@example.com`, email_verified: verified, name: `Flow ${n}` };
  return idp.user;
};

afterEach(() => {
  vi.useRealTimers();
});

describe('GET /auth/login/:provider', () => {
  it('redirects with state, PKCE S256, nonce and minimal scopes, to a redirect URI built from PUBLIC_URL', async () => {
    const { location, response } = await startLogin('oidc', oidcEnv, '/app', { host: 'evil.example', 'x-forwarded-host': 'evil.example' });
    expect(`${location.origin}${location.pathname}`).toBe(`${idp.issuer}/authorize`);
    const q = location.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe(idp.clientId);
    expect(q.get('redirect_uri')).toBe(`${PUBLIC_URL}/auth/callback/oidc`);
    expect(q.get('scope')).toBe('openid email profile');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // 256 bits each, base64url
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(response.headers.get('cache-control')).toBe('no-store');

    const cookie = setCookies(response).get(FLOW_COOKIE)!;
    expect(cookie.attributes).toMatch(/Max-Age=600/);
    expect(cookie.attributes).toMatch(/Path=\/(;|$)/);
    expect(cookie.attributes).not.toMatch(/Domain=/i);
    expect(cookie.attributes).toMatch(/HttpOnly/);
    expect(cookie.attributes).toMatch(/Secure/);
    expect(cookie.attributes).toMatch(/SameSite=Lax/);
    // Encrypted: neither the state nor anything else is readable in it.
    expect(cookie.value.split('.')).toHaveLength(5);
    expect(cookie.value).not.toContain(q.get('state'));
    expect(decodeProtectedHeader(cookie.value)).toEqual({ alg: 'dir', enc: 'A256GCM' });
  });

  it('answers 404 (a page) for an unknown or unconfigured provider', async () => {
    for (const id of ['nope', 'github', 'dev']) {
      const r = await call(`/auth/login/${id}`, { env: oidcEnv });
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/text\/html/);
      expect(r.headers.getSetCookie()).toEqual([]);
    }
  });

  it('answers 503 without a cookie when discovery is down, 502 when it is garbage', async () => {
    const other = await FakeOidcProvider.create();
    const e = makeEnv({ OIDC_ISSUER: other.issuer, OIDC_CLIENT_ID: other.clientId, OIDC_CLIENT_SECRET: other.clientSecret });
    other.faults.discovery = 'down';
    const down = await call('/auth/login/oidc', { env: e });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(down.headers.getSetCookie()).toEqual([]);
    expect(await down.text()).toContain('not answering');
    other.faults.discovery = 'garbage';
    expect((await call('/auth/login/oidc', { env: e })).status).toBe(502);
    other.faults.discovery = undefined;
    expect((await call('/auth/login/oidc', { env: e })).status).toBe(302);
  });

  it('refuses a discovery document that names another issuer', async () => {
    const other = await FakeOidcProvider.create();
    const e = makeEnv({ OIDC_ISSUER: `${other.issuer}/`, OIDC_CLIENT_ID: other.clientId, OIDC_CLIENT_SECRET: other.clientSecret });
    const r = await call('/auth/login/oidc', { env: e });
    expect(r.status).toBe(502);
  });

  it('keeps only a safe return_to in the flow', async () => {
    freshUser();
    const r = await signIn('oidc', idp, oidcEnv, '//evil.example/steal');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/');
  });
});

describe('GET /auth/callback/:provider, success', () => {
  it('creates the user and identity, starts a session, sets cookies and sends the browser to return_to', async () => {
    const who = freshUser();
    const before = await stateSnapshot();
    const r = await signIn('oidc', idp, oidcEnv, '/dashboard?tab=1#top');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/dashboard?tab=1#top');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const jar = setCookies(r);
    expect(jar.get(FLOW_COOKIE)?.attributes).toMatch(/Max-Age=0/);
    expect(jar.get('__Host-gatehouse')?.attributes).toMatch(/HttpOnly/);
    const { access } = sessionCookies(r);

    const after = await stateSnapshot();
    expect(after.users).toBe(before.users + 1);
    expect(after.identities).toBe(before.identities + 1);
    expect(after.sessions).toBe(before.sessions + 1);
    const user = await env.DB.prepare('SELECT * FROM users WHERE email = ?').bind(who.email).first<{ id: string; email_verified: number; name: string; password_hash: null }>();
    expect(user).toMatchObject({ email_verified: 1, name: who.name, password_hash: null });
    const identity = await env.DB.prepare('SELECT * FROM identities WHERE provider = ? AND subject = ?').bind('oidc', who.sub).first<{ user_id: string; email: string; tokens_encrypted: null }>();
    expect(identity).toMatchObject({ user_id: user!.id, email: who.email, tokens_encrypted: null });
    expect(await countRows('sessions', 'user_id = ? AND provider = ?', user!.id, 'oidc')).toBe(1);

    const me = await call('/auth/me', { env: oidcEnv, cookies: { '__Host-gatehouse': access } });
    expect(me.status).toBe(200);
    const body = (await me.json()) as { user: { email: string; email_verified: boolean }; session: { provider: string } };
    expect(body.user).toMatchObject({ email: who.email, email_verified: true });
    expect(body.session.provider).toBe('oidc');
  });

  it('sent the PKCE verifier and the client credentials to the token endpoint', async () => {
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const from = requests.length;
    expect((await callback(consent, oidcEnv, started.flowCookie)).status).toBe(303);
    const tokenCall = requests.slice(from).find((q) => q.url === `${idp.issuer}/token`)!;
    const form = new URLSearchParams(tokenCall.body);
    expect(form.get('grant_type')).toBe('authorization_code');
    expect(form.get('code')).toBe(consent.code);
    expect(form.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(form.get('redirect_uri')).toBe(`${PUBLIC_URL}/auth/callback/oidc`);
    expect(tokenCall.headers.authorization).toBe(`Basic ${btoa(`${idp.clientId}:${idp.clientSecret}`)}`);
  });

  it('signs a returning identity into the same account', async () => {
    freshUser();
    const first = await signIn('oidc', idp, oidcEnv);
    expect(first.status).toBe(303);
    const users = await countRows('users');
    const second = await signIn('oidc', idp, oidcEnv);
    expect(second.status).toBe(303);
    expect(await countRows('users')).toBe(users);
    expect(await countRows('identities', 'subject = ?', idp.user.sub)).toBe(1);
  });

  it('takes the email from userinfo when the ID token has none, and refuses userinfo about someone else', async () => {
    const who = freshUser();
    idp.emailOnlyInUserinfo = true;
    try {
      expect((await signIn('oidc', idp, oidcEnv)).status).toBe(303);
      expect(await countRows('users', 'email = ? AND email_verified = 1', who.email)).toBe(1);
      freshUser();
      idp.userinfoSub = 'somebody-else';
      const before = await stateSnapshot();
      const r = await signIn('oidc', idp, oidcEnv);
      expect(r.status).toBe(400);
      expect(await stateSnapshot()).toEqual(before);
    } finally {
      idp.emailOnlyInUserinfo = false;
      idp.userinfoSub = null;
    }
  });
});

describe('GET /auth/callback/:provider, refusals (no session, page with escaped text)', () => {
  async function expectRefused(r: Response, status: number, before: Awaited<ReturnType<typeof stateSnapshot>>) {
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    const jar = setCookies(r);
    expect(jar.has('__Host-gatehouse')).toBe(false);
    expect(jar.has('__Secure-gatehouse-refresh')).toBe(false);
    expect(await stateSnapshot()).toEqual(before);
    return r.text();
  }

  it('refuses a callback without the flow cookie', async () => {
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const before = await stateSnapshot();
    const text = await expectRefused(await callback(consent, oidcEnv), 400, before);
    expect(text).toContain('expired or was already used');
    expect(idp.codes.has(consent.code)).toBe(true); // the code was never even exchanged
  });

  it('refuses a mismatched state, and a missing one', async () => {
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const before = await stateSnapshot();
    const forged = consent.callback.replace(/state=[^&]+/, 'state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await expectRefused(await callback(forged, oidcEnv, started.flowCookie), 400, before);
    const without = consent.callback.replace(/&?state=[^&]+/, '');
    await expectRefused(await callback(without, oidcEnv, started.flowCookie), 400, before);
    expect(await countRows('auth_events', "event = 'oauth_login' AND outcome = 'failure' AND detail LIKE '%state_mismatch%'")).toBeGreaterThanOrEqual(2);
  });

  it('refuses a replayed callback even with the cookie copied back', async () => {
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const first = await callback(consent, oidcEnv, started.flowCookie);
    expect(first.status).toBe(303);
    const before = await stateSnapshot();
    const tokenCalls = idp.tokenCalls;
    const text = await expectRefused(await callback(consent, oidcEnv, started.flowCookie), 400, before);
    expect(text).toContain('already used');
    expect(idp.tokenCalls).toBe(tokenCalls);
    expect(await countRows('auth_events', "event = 'oauth_login' AND detail LIKE '%state_replayed%'")).toBeGreaterThanOrEqual(1);
  });

  it('refuses a state minted for another provider', async () => {
    const gh = makeEnv({ ...oidcEnv, GITHUB_CLIENT_ID: 'gh', GITHUB_CLIENT_SECRET: 'ghs' });
    const started = await startLogin('github', gh);
    const state = started.location.searchParams.get('state')!;
    const before = await stateSnapshot();
    const text = await expectRefused(await callback(`/auth/callback/oidc?code=x&state=${state}`, gh, started.flowCookie), 400, before);
    expect(text).toContain('different provider');
  });

  it('refuses an altered flow cookie and one sealed with another key', async () => {
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const before = await stateSnapshot();
    const parts = started.flowCookie.split('.');
    parts[3] = parts[3]!.slice(0, -2) + (parts[3]!.endsWith('AA') ? 'BB' : 'AA');
    await expectRefused(await callback(consent, oidcEnv, parts.join('.')), 400, before);
    const otherKey = crypto.getRandomValues(new Uint8Array(32));
    const state = new URL(consent.callback, PUBLIC_URL).searchParams.get('state')!;
    const forged = await new EncryptJWT({ p: 'oidc', s: state, v: 'x'.repeat(43), n: 'n', r: '/' })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setAudience('gatehouse:oauth-flow')
      .setIssuedAt()
      .setExpirationTime('10m')
      .encrypt(otherKey);
    await expectRefused(await callback(consent, oidcEnv, forged), 400, before);
  });

  it('refuses an expired flow (10 minutes)', async () => {
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const before = await stateSnapshot();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11 * 60 * 1000);
    const text = await expectRefused(await callback(consent, oidcEnv, started.flowCookie), 400, before);
    expect(text).toContain('expired');
  });

  it('a cookie sealed under the derived key is what the gateway accepts (the key is HKDF of the active signing key)', async () => {
    // Proves the key derivation documented in crypto/derive-key.ts, so the refusal above is about the key and nothing else.
    freshUser();
    const started = await startLogin('oidc', oidcEnv);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const q = new URL(consent.callback, PUBLIC_URL).searchParams;
    const key = await hkdf(base64url.decode(testKey.d!), `oauth-flow-cookie/v1/${testKey.kid}`);
    const verifier = 'v'.repeat(43);
    // A cookie we seal ourselves with the right key but a different verifier reaches the token
    // endpoint, which refuses it for PKCE: the key derivation matches, PKCE is still enforced.
    const sealed = await new EncryptJWT({ p: 'oidc', s: q.get('state')!, v: verifier, n: started.location.searchParams.get('nonce'), r: '/' })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setAudience('gatehouse:oauth-flow')
      .setIssuedAt()
      .setExpirationTime('10m')
      .encrypt(key);
    const before = await stateSnapshot();
    const r = await callback(consent, oidcEnv, sealed);
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('did not confirm');
    expect(await stateSnapshot()).toEqual(before);
  });

  it('refuses an error= answer from the provider and escapes what it repeats', async () => {
    const started = await startLogin('oidc', oidcEnv);
    const state = started.location.searchParams.get('state')!;
    const before = await stateSnapshot();
    const denied = await expectRefused(await callback(`/auth/callback/oidc?error=access_denied&state=${state}`, oidcEnv, started.flowCookie), 400, before);
    expect(denied).toContain('(access_denied)');
    const evil = await expectRefused(
      await callback(`/auth/callback/oidc?error=${encodeURIComponent('<script>alert(1)</script>')}&error_description=%3Cimg%20src%3Dx%3E&state=${state}`, oidcEnv, started.flowCookie),
      400,
      before,
    );
    expect(evil).not.toContain('<script>');
    expect(evil).not.toContain('<img');
  });

  it('links the refusal page back to the sign-in page with the flow’s return_to', async () => {
    const started = await startLogin('oidc', oidcEnv, '/app?x=1');
    const state = started.location.searchParams.get('state')!;
    const r = await callback(`/auth/callback/oidc?error=access_denied&state=${state}`, oidcEnv, started.flowCookie);
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('href="/auth/login?return_to=%2Fapp%3Fx%3D1"');
  });

  it('refuses a code the provider does not accept (400), and a missing code', async () => {
    const started = await startLogin('oidc', oidcEnv);
    const state = started.location.searchParams.get('state')!;
    const before = await stateSnapshot();
    await expectRefused(await callback(`/auth/callback/oidc?code=made-up&state=${state}`, oidcEnv, started.flowCookie), 400, before);
    const again = await startLogin('oidc', oidcEnv);
    await expectRefused(await callback(`/auth/callback/oidc?state=${again.location.searchParams.get('state')}`, oidcEnv, again.flowCookie), 400, before);
  });
});
