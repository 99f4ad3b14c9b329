/**
 * OpenID Connect sign-in end to end: a real OpenID Connect server (oauth2-mock-server, started
 * here as `npm run dev` starts it) and a real `wrangler dev` with OIDC_ISSUER pointing at it.
 * Every redirect is followed by hand, and the refused cases tamper with the real server.
 */
import type { MutableToken } from 'oauth2-mock-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidcServer } from '../../scripts/dev/oidc-server.mjs';
import { Client, freePort, startGateway, type Gateway } from './harness';

const CLIENT_ID = 'gatehouse-e2e';
let gw: Gateway;
let idp: Awaited<ReturnType<typeof startDevOidcServer>>;
let who = { sub: 'e2e-1', email: 'e2e-1@example.com', email_verified: true, name: 'E2E One' };

beforeAll(async () => {
  idp = await startDevOidcServer({ port: await freePort(), claims: () => who });
  gw = await startGateway({
    vars: { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: CLIENT_ID, OIDC_CLIENT_SECRET: 'e2e-secret', OIDC_NAME: 'Mock SSO' },
  });
});
afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
});

let n = 0;
function newUser() {
  n += 1;
  const stamp = `${Date.now()}-${n}`;
  who = { sub: `e2e-${stamp}`, email: `e2e-${stamp}@example.com`, email_verified: true, name: `E2E ${n}` };
  return who;
}

/** Changes the next ID token (the one carrying our nonce; the access token is signed first). */
function tamperNextIdToken(change: (token: MutableToken) => void) {
  const handler = (token: MutableToken) => {
    if (!('nonce' in token.payload)) return;
    idp.server.service.off('beforeTokenSigning', handler);
    change(token);
  };
  idp.server.service.on('beforeTokenSigning', handler);
}

/** Login -> provider authorize -> back at the callback URL (not yet requested). */
async function toCallback(c: Client, returnTo = '/auth/me') {
  const login = await c.fetch(`/auth/login/oidc?return_to=${encodeURIComponent(returnTo)}`);
  expect(login.status).toBe(302);
  const authorize = new URL(login.headers.get('location')!);
  expect(authorize.origin).toBe(idp.issuer);
  expect(authorize.searchParams.get('redirect_uri')).toBe(`${gw.url}/auth/callback/oidc`);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(c.cookies.has('__Host-gatehouse-oauth')).toBe(true);
  const atProvider = await fetch(authorize, { redirect: 'manual' });
  expect(atProvider.status).toBe(302);
  const back = new URL(atProvider.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(`${gw.url}/auth/callback/oidc`);
  return back;
}

describe('OpenID Connect sign-in over wrangler dev', () => {
  it('walks the whole redirect dance and ends signed in', async () => {
    const user = newUser();
    const c = new Client(gw.url);
    const back = await toCallback(c, '/auth/me?from=oidc');
    const done = await c.fetch(`${back.pathname}${back.search}`);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/auth/me?from=oidc');
    expect(c.cookies.has('__Host-gatehouse')).toBe(true);
    expect(c.cookies.has('__Secure-gatehouse-refresh')).toBe(true);
    expect(c.cookies.has('__Host-gatehouse-oauth')).toBe(false);

    const me = await c.fetch('/auth/me');
    expect(me.status).toBe(200);
    const body = (await me.json()) as { user: { email: string; email_verified: boolean; name: string }; session: { provider: string } };
    expect(body.user).toMatchObject({ email: user.email, email_verified: true, name: user.name });
    expect(body.session.provider).toBe('oidc');
  });

  it('refuses a bad state', async () => {
    newUser();
    const c = new Client(gw.url);
    const back = await toCallback(c);
    back.searchParams.set('state', 'A'.repeat(43));
    const r = await c.fetch(`${back.pathname}${back.search}`);
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('does not match');
    expect(c.cookies.has('__Host-gatehouse')).toBe(false);
    expect((await c.fetch('/auth/me')).status).toBe(401);
  });

  it('refuses a replayed callback, even with the flow cookie copied back', async () => {
    newUser();
    const c = new Client(gw.url);
    const back = await toCallback(c);
    const flowCookie = c.cookies.get('__Host-gatehouse-oauth')!;
    expect((await c.fetch(`${back.pathname}${back.search}`)).status).toBe(303);

    const attacker = new Client(gw.url);
    attacker.cookies.set('__Host-gatehouse-oauth', flowCookie);
    const replay = await attacker.fetch(`${back.pathname}${back.search}`);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('already used');
    expect(attacker.cookies.has('__Host-gatehouse')).toBe(false);
  });

  it('refuses an ID token with the wrong nonce', async () => {
    newUser();
    tamperNextIdToken((token) => {
      token.payload.nonce = 'not-the-nonce';
    });
    const c = new Client(gw.url);
    const back = await toCallback(c);
    const r = await c.fetch(`${back.pathname}${back.search}`);
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('did not confirm');
    expect(c.cookies.has('__Host-gatehouse')).toBe(false);
  });

  it('refuses an ID token with the wrong audience', async () => {
    newUser();
    tamperNextIdToken((token) => {
      token.payload.aud = 'some-other-client';
    });
    const c = new Client(gw.url);
    const back = await toCallback(c);
    const r = await c.fetch(`${back.pathname}${back.search}`);
    expect(r.status).toBe(400);
    expect(c.cookies.has('__Host-gatehouse')).toBe(false);
  });

  it('answers 503 with no session when the provider is down', async () => {
    newUser();
    const c = new Client(gw.url);
    const back = await toCallback(c);
    idp.server.service.once('beforeResponse', (response: { statusCode: number; body: unknown }) => {
      response.statusCode = 500;
      response.body = '';
    });
    const r = await c.fetch(`${back.pathname}${back.search}`);
    expect(r.status).toBe(503);
    expect(c.cookies.has('__Host-gatehouse')).toBe(false);
  });
});
