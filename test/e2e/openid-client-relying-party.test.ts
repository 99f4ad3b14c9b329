/**
 * Gatehouse as an OpenID Connect provider, proven against a relying party nobody here wrote:
 * `openid-client` (certified for the Basic RP profile) talks to a real `wrangler dev`, and a
 * real Chromium does what a person does (sign in on the gateway's page, allow on its consent
 * page, confirm the sign-out).
 *
 * The relying party is a small node:http server on a loopback port: `/callback` (its redirect
 * URI), `/logged-out` (its post-logout redirect URI) and `/backchannel-logout` (OpenID
 * Back-Channel Logout 1.0), each recording what it receives. Its client is registered by an
 * admin through the admin API, as an operator would; the admin and the user are password
 * accounts confirmed through the mailed link (the SMTP catcher), since ADMIN_EMAILS grants the
 * role only to a proven address.
 *
 * The `it`s run in order and share the relying party's state, as one relying party's life does.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpCatcher, type SmtpCatcher } from '../support/smtp-catcher';
import { CHROMIUM, startGateway, type Gateway } from './harness';

const stamp = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 6)}`;
const ADMIN = `rp-admin-${stamp}@example.com`;
const USER = `rp-user-${stamp}@example.com`;
const PASSWORD = 'a relying party passphrase, long';
const SCOPE = 'openid email offline_access';
const APP_NAME = 'Notes (openid-client)';
/** The second authorization's max_age: far more than the test takes, so the first sign-in serves. */
const MAX_AGE_S = 300;
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * How long the relying party waits for the back-channel logout token. The bound relied on: the
 * session's end writes the delivery into the user's Durable Object due at once, and the
 * object's alarm makes the first try straight away (the backoff, 30 s and more, applies only
 * after a failed try). This endpoint answers 200, so only that first try is waited for; 30 s
 * leaves room for a loaded 2-core machine, not for any retry.
 */
const BACKCHANNEL_WAIT_MS = 30_000;

interface Received {
  callbacks: URL[];
  loggedOut: URL[];
  logoutPosts: { contentType: string; body: string }[];
}

/** The relying party's endpoints: each records what it receives and answers plainly. */
function startRelyingParty(): Promise<{ url: string; received: Received; stop: () => Promise<void> }> {
  const received: Received = { callbacks: [], loggedOut: [], logoutPosts: [] };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://rp.invalid');
    if (req.method === 'GET' && url.pathname === '/callback') {
      received.callbacks.push(new URL(req.url ?? '/', base));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('callback received');
    } else if (req.method === 'GET' && url.pathname === '/logged-out') {
      received.loggedOut.push(new URL(req.url ?? '/', base));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('signed out of the relying party');
    } else if (req.method === 'POST' && url.pathname === '/backchannel-logout') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        received.logoutPosts.push({ contentType: req.headers['content-type'] ?? '', body });
        // Back-Channel Logout 1.0 §2.8: 200 on success, not cacheable.
        res.writeHead(200, { 'cache-control': 'no-store' }).end();
      });
    } else {
      res.writeHead(404).end();
    }
  });
  let base = '';
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve({ url: base, received, stop: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

/** What openid-client returns from a grant: the token response and its helpers (`claims()`). */
type Tokens = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/** Polls `probe` every 100 ms until it returns a value, or fails after `ms` naming `what`. */
async function eventually<T>(probe: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let gw: Gateway;
let catcher: SmtpCatcher;
let rp: Awaited<ReturnType<typeof startRelyingParty>>;
let context: BrowserContext;
let page: Page;
let profileDir: string;

async function api(path: string, init: { body?: unknown; token?: string; method?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { origin: gw.url, accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  return fetch(`${gw.url}${path}`, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), redirect: 'manual' });
}

/** Registers a password account, confirms it through the mailed link, and returns its API session. */
async function confirmedAccount(email: string): Promise<{ accessToken: string; userId: string }> {
  const registered = await api('/auth/register', { body: { email, password: PASSWORD } });
  expect(registered.status, await registered.clone().text()).toBe(202);
  const mail = await catcher.waitForMail(email);
  const link = mail.links.find((l) => l.startsWith(`${gw.url}/auth/email/verify?token=`));
  expect(link, mail.text).toBeDefined();
  const token = new URL(link!).searchParams.get('token')!;
  const confirmed = await api('/auth/email/verify', { body: { token, password: PASSWORD } });
  expect(confirmed.status, await confirmed.clone().text()).toBe(200);
  const body = (await confirmed.json()) as { access_token: string; user: { id: string } };
  return { accessToken: body.access_token, userId: body.user.id };
}

/** The gateway session the browser holds, as its session cookie (an access token) says: its id and sign-in time. */
async function browserSession(): Promise<{ sid: unknown; authTime: unknown }> {
  const cookie = (await context.cookies(gw.url)).find((c) => c.name === '__Host-gatehouse');
  expect(cookie, 'the browser holds a gateway session').toBeDefined();
  const claims = decodeJwt(cookie!.value);
  return { sid: claims.sid, authTime: claims.auth_time };
}

/** What openid-client throws for an OAuth error response, as `{status, error}`. */
async function oauthError(promise: Promise<unknown>): Promise<{ status: number; error: string }> {
  const e = await promise.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'the request was refused').toBeInstanceOf(oidc.ResponseBodyError);
  const { status, error } = e as oidc.ResponseBodyError;
  return { status, error };
}

let userId: string;
let clientId: string;
let clientSecret: string;
let config: oidc.Configuration;

beforeAll(async () => {
  catcher = await startSmtpCatcher();
  rp = await startRelyingParty();
  // With SMTP_URL and no EMAIL_VERIFICATION, addresses are proven by the mailed link (required).
  gw = await startGateway({ vars: { SMTP_URL: catcher.smtpUrl, ADMIN_EMAILS: ADMIN, APP_NAME: 'Gatehouse RP test' } });
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-rp-'));
  context = await chromium.launchPersistentContext(profileDir, { ...CHROMIUM });
  page = await context.newPage();
  // Every page step here takes a second or two: a step that hangs fails in 20 s, not playwright's 30.
  page.setDefaultTimeout(20_000);

  const admin = await confirmedAccount(ADMIN);
  userId = (await confirmedAccount(USER)).userId;
  const registered = await api('/auth/admin/clients', {
    token: admin.accessToken,
    body: {
      name: APP_NAME,
      kind: 'confidential',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [`${rp.url}/callback`],
      post_logout_redirect_uris: [`${rp.url}/logged-out`],
      backchannel_logout_uri: `${rp.url}/backchannel-logout`,
      grant_types: ['authorization_code', 'refresh_token'],
      allowed_scopes: SCOPE.split(' '),
    },
  });
  expect(registered.status, await registered.clone().text()).toBe(201);
  const answer = (await registered.json()) as { client: { client_id: string }; client_secret: string };
  clientId = answer.client.client_id;
  clientSecret = answer.client_secret;
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  await rp?.stop();
  await catcher?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/**
 * One authorization request with PKCE S256, state and nonce (and any `extra` parameters), driven
 * in Chromium by `act`; returns the URL the relying party's callback received and the checks.
 */
async function authorize(act: (page: Page) => Promise<void>, extra: Record<string, string> = {}): Promise<{ callback: URL; verifier: string; state: string; nonce: string }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: `${rp.url}/callback`,
    scope: SCOPE,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const before = rp.received.callbacks.length;
  await page.goto(url.href);
  await act(page);
  await page.waitForURL((u) => u.href.startsWith(`${rp.url}/callback`));
  const callback = await eventually(() => rp.received.callbacks[before], 5_000, 'the callback at the relying party');
  return { callback, verifier, state, nonce };
}

describe('openid-client as a relying party of Gatehouse', () => {
  let idToken: string;
  let sid: string;
  let authTime: number;
  let first: Tokens;
  let firstCallback: { callback: URL; verifier: string; state: string; nonce: string };

  it('discovers the provider from its issuer URL: endpoints, ES256 ID tokens, PKCE S256, logout', async () => {
    // http is the dev gateway's; non-repudiation checks make openid-client verify every ID
    // token's signature against the discovered JWKS (by default it trusts the TLS channel).
    config = await oidc.discovery(new URL(gw.url), clientId, undefined, oidc.ClientSecretBasic(clientSecret), {
      execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks],
    });
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(gw.url);
    expect(meta.authorization_endpoint).toBe(`${gw.url}/auth/authorize`);
    expect(meta.token_endpoint).toBe(`${gw.url}/auth/token`);
    expect(meta.userinfo_endpoint).toBe(`${gw.url}/auth/userinfo`);
    expect(meta.revocation_endpoint).toBe(`${gw.url}/auth/revoke`);
    expect(meta.introspection_endpoint).toBe(`${gw.url}/auth/introspect`);
    expect(meta.end_session_endpoint).toBe(`${gw.url}/auth/end-session`);
    expect(meta.supportsPKCE('S256')).toBe(true);
    expect(meta.id_token_signing_alg_values_supported).toContain('ES256');
    expect(meta.backchannel_logout_supported).toBe(true);
    expect(meta.backchannel_logout_session_supported).toBe(true);
  });

  it('signs the user in and asks for consent in Chromium; exchanges the code with PKCE and validates the ID token (signature, iss, aud, nonce, at_hash)', async () => {
    firstCallback = await authorize(async (p) => {
      // Nobody is signed in: the gateway's sign-in page, then back to the authorization.
      await p.waitForURL((u) => u.pathname === '/auth/login');
      await p.locator('#login-email').fill(USER);
      await p.locator('#login-password').fill(PASSWORD);
      await p.getByRole('button', { name: 'Sign in', exact: true }).click();
      // The consent page names the app and what it asks for; Allow sends the code.
      await p.waitForURL((u) => u.pathname === '/auth/authorize');
      await expect(p.locator('#consent-app').innerText()).resolves.toBe(APP_NAME);
      await expect(p.locator('#consent-account').innerText()).resolves.toContain(USER);
      const asked = await p.locator('#consent-scopes [data-scope]').evaluateAll((items) => items.map((li) => li.getAttribute('data-scope')));
      expect(asked.sort()).toEqual(SCOPE.split(' ').sort());
      await p.getByRole('button', { name: 'Allow', exact: true }).click();
    });
    const { callback, verifier, state, nonce } = firstCallback;
    expect(callback.searchParams.get('state')).toBe(state);
    const session = await browserSession();
    expect(session.sid).toBeTypeOf('string');
    sid = session.sid as string;

    // openid-client checks state and iss (advertised), sends the verifier, and validates the ID
    // token: signature against the JWKS, iss, aud and azp, exp and iat, nonce. It does not check
    // at_hash in the code flow: that is checked below.
    first = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    expect(first.token_type.toLowerCase()).toBe('bearer');
    expect(first.refresh_token).toBeTypeOf('string');
    expect(first.scope?.split(' ').sort()).toEqual(SCOPE.split(' ').sort());
    const claims = first.claims()!;
    idToken = first.id_token!;
    authTime = claims.auth_time!;
    expect(claims).toMatchObject({ iss: gw.url, aud: clientId, sub: userId, sid, nonce, email: USER, email_verified: true });
    expect(claims.amr).toEqual(['pwd']);
    // auth_time is the session's sign-in, as the gateway's own session token says.
    expect(claims.auth_time).toBe(session.authTime);
    // at_hash (Core §3.1.3.6): the left half of SHA-256 of the access token, base64url.
    expect(claims.at_hash).toBe(createHash('sha256').update(first.access_token).digest().subarray(0, 16).toString('base64url'));
  });

  it('fetches userinfo with the access token for the ID token’s subject', async () => {
    const info = await oidc.fetchUserInfo(config, first.access_token, userId);
    expect(info).toMatchObject({ sub: userId, email: USER, email_verified: true });
  });

  it('refreshes with rotation: a new refresh token, the old one refused with invalid_grant, the new one still good', async () => {
    const old = first.refresh_token!;
    const next = await oidc.refreshTokenGrant(config, old);
    expect(next.refresh_token).toBeTypeOf('string');
    expect(next.refresh_token).not.toBe(old);
    expect(next.access_token).not.toBe(first.access_token);
    expect(await oauthError(oidc.refreshTokenGrant(config, old))).toEqual({ status: 400, error: 'invalid_grant' });
    // The refused replay (within the rotation grace) did not end the grant: the successor works.
    const third = await oidc.refreshTokenGrant(config, next.refresh_token!);
    expect((await oidc.fetchUserInfo(config, third.access_token, userId)).sub).toBe(userId);
    first = third;
  });

  it('introspects the access token as active for this client and user; after revoking the refresh token, refresh fails', async () => {
    const active = await oidc.tokenIntrospection(config, first.access_token);
    expect(active).toMatchObject({ active: true, client_id: clientId, sub: userId });
    expect(active.scope?.split(' ')).toContain('openid');

    await oidc.tokenRevocation(config, first.refresh_token!);
    expect(await oauthError(oidc.refreshTokenGrant(config, first.refresh_token!))).toEqual({ status: 400, error: 'invalid_grant' });
    // The grant ended with its refresh token: its access token is inactive too (RFC 7009 §2.1).
    expect((await oidc.tokenIntrospection(config, first.access_token)).active).toBe(false);
  });

  it('refuses the first authorization code presented again, with invalid_grant', async () => {
    const { callback, verifier, state, nonce } = firstCallback;
    const replay = oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    expect(await oauthError(replay)).toEqual({ status: 400, error: 'invalid_grant' });
  });

  let second: Tokens;

  it('authorizes again straight back to the app: consent remembered, the same session and sign-in, within max_age', async () => {
    // At least into the next second after the sign-in (the steps before usually take longer: then
    // no wait), so that an auth_time of this request rather than of the sign-in would show.
    const nextSecond = (authTime + 1) * 1000 - Date.now();
    if (nextSecond > 0) await new Promise((r) => setTimeout(r, nextSecond + 50));
    // No page to act on: the browser's session and the remembered consent send the code at once.
    const { callback, verifier, state, nonce } = await authorize(async () => {}, { max_age: String(MAX_AGE_S) });
    // openid-client checks auth_time against max_age.
    second = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, maxAge: MAX_AGE_S });
    expect(second.claims()).toMatchObject({ sub: userId, sid, auth_time: authTime, amr: ['pwd'] });
    idToken = second.id_token!;
  });

  it('RP-initiated logout: confirmed in Chromium, back at the post-logout URI with the state; a signed logout token for the session arrives on the back channel; the tokens are refused', async () => {
    const state = oidc.randomState();
    const logoutUrl = oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${rp.url}/logged-out`, state });
    await page.goto(logoutUrl.href);
    // A link alone signs nobody out: the page names the app that asks, and the user confirms.
    await expect(page.locator('body').innerText()).resolves.toContain(`${APP_NAME} asks to sign you out`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${rp.url}/logged-out`));
    const landed = await eventually(() => rp.received.loggedOut[0], 5_000, 'the post-logout redirect');
    expect(landed.searchParams.get('state')).toBe(state);
    expect((await context.cookies(gw.url)).map((c) => c.name)).not.toContain('__Host-gatehouse');

    const post = await eventually(() => rp.received.logoutPosts[0], BACKCHANNEL_WAIT_MS, 'the back-channel logout token');
    expect(post.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    const logoutToken = new URLSearchParams(post.body).get('logout_token');
    expect(logoutToken, post.body).toBeTypeOf('string');
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(logoutToken!, jwks, { issuer: gw.url, audience: clientId, typ: 'logout+jwt', maxTokenAge: '2 minutes' });
    expect(payload.sid).toBe(sid);
    expect(payload.sub).toBe(userId);
    expect(payload.events).toEqual({ [BACKCHANNEL_LOGOUT_EVENT]: {} });
    expect(payload).not.toHaveProperty('nonce');
    expect(payload.jti).toBeTypeOf('string');

    // The session has ended: its grant's access token and refresh token with it.
    const refused = await oidc.fetchUserInfo(config, second.access_token, userId).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(oidc.WWWAuthenticateChallengeError);
    expect((refused as oidc.WWWAuthenticateChallengeError).status).toBe(401);
    expect((refused as oidc.WWWAuthenticateChallengeError).cause[0]?.parameters.error).toBe('invalid_token');
    expect(await oauthError(oidc.refreshTokenGrant(config, second.refresh_token!))).toEqual({ status: 400, error: 'invalid_grant' });
  });
});
