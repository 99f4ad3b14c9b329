/**
 * Provider-initiated sign-out end to end: a real OpenID Connect server (oauth2-mock-server, as
 * `npm run dev` starts it) signs a user in through a real `wrangler dev`, then posts the
 * gateway a back-channel logout token signed with its own key (OpenID Connect Back-Channel
 * Logout 1.0); the next request through the proxy with that session is refused, at an
 * "immediate" route and at a cached one, and its refresh token is dead.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidcServer } from '../../scripts/dev/oidc-server.mjs';
import { Client, freePort, startGateway, type Gateway } from './harness';

const CLIENT_ID = 'gatehouse-bcl-e2e';
const stamp = Date.now();
let who = { sub: `bcl-${stamp}`, email: `bcl-${stamp}@example.com`, email_verified: true, name: 'BCL', sid: `mock-session-${stamp}` };

let gw: Gateway;
let idp: Awaited<ReturnType<typeof startDevOidcServer>>;
let origin: Server;
let originHits = 0;

beforeAll(async () => {
  idp = await startDevOidcServer({ port: await freePort(), claims: () => who });
  const port = await freePort();
  origin = createServer((_req, res) => {
    originHits += 1;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('origin');
  });
  await new Promise<void>((r) => origin.listen(port, '127.0.0.1', () => r()));
  const routes = [
    { path: '/now', origin: `http://127.0.0.1:${port}`, auth: 'required', revocation: 'immediate' },
    { path: '/app', origin: `http://127.0.0.1:${port}`, auth: 'required' },
  ];
  gw = await startGateway({ vars: { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: CLIENT_ID, OIDC_CLIENT_SECRET: 'bcl-secret', ROUTES: JSON.stringify(routes) } });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
  origin?.closeAllConnections();
  await new Promise((r) => (origin ? origin.close(r) : r(undefined)));
});

/** Login -> the provider's authorize (it signs `who` in at once) -> the callback: signed in. */
async function signIn(c: Client) {
  const login = await c.fetch('/auth/login/oidc');
  expect(login.status).toBe(302);
  const atProvider = await fetch(login.headers.get('location')!, { redirect: 'manual' });
  expect(atProvider.status).toBe(302);
  const back = new URL(atProvider.headers.get('location')!);
  const done = await c.fetch(`${back.pathname}${back.search}`);
  expect(done.status).toBe(303);
  expect(c.cookies.has('__Host-gatehouse')).toBe(true);
}

/** A logout token as the provider signs it: its own key (`kid` of its JWKS), `logout+jwt`. */
function logoutToken(claims: Record<string, unknown>) {
  return idp.server.issuer.buildToken({
    expiresIn: 120,
    scopesOrTransform: (header, payload) => {
      header.typ = 'logout+jwt';
      Object.assign(payload, { aud: CLIENT_ID, jti: randomUUID(), events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...claims });
    },
  });
}

const postLogout = async (token: string) =>
  fetch(`${gw.url}/auth/backchannel-logout/oidc`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }) });

describe('a provider’s back-channel logout over wrangler dev', () => {
  it('a forged token is refused and ends nothing; the provider’s own ends the session: the next proxied request is refused', async () => {
    const c = new Client(gw.url);
    await signIn(c);
    const other = new Client(gw.url);
    await signIn(other);
    expect((await c.fetch('/now', { headers: { accept: 'application/json' } })).status).toBe(200);
    expect((await c.fetch('/app', { headers: { accept: 'application/json' } })).status).toBe(200);

    // Signed for another client of the same provider: refused, nothing ended.
    const forged = await postLogout(await logoutToken({ sub: who.sub, sid: who.sid, aud: 'another-client' }));
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { error: string }).error).toBe('invalid_request');
    expect((await c.fetch('/now', { headers: { accept: 'application/json' } })).status).toBe(200);

    const started = Date.now();
    const accepted = await postLogout(await logoutToken({ sub: who.sub, sid: who.sid }));
    expect(accepted.status).toBe(200);
    expect(accepted.headers.get('cache-control')).toBe('no-store');
    const hits = originHits;
    expect((await c.fetch('/now', { headers: { accept: 'application/json' } })).status).toBe(401);
    expect((await c.fetch('/app', { headers: { accept: 'application/json' } })).status).toBe(401);
    // The other sign-in came from the same provider session (the mock names one `sid` for all): it ended too.
    expect((await other.fetch('/now', { headers: { accept: 'application/json' } })).status).toBe(401);
    expect(originHits).toBe(hits);
    expect((await c.fetch('/auth/refresh', { method: 'POST', json: {} , headers: { origin: gw.url } })).status).toBe(401);
    console.log(`[provider back-channel logout] posted -> refused at the proxy in ${Date.now() - started} ms`);

    // The same token again: a replay, refused.
    expect((await postLogout(await logoutToken({ sub: who.sub, sid: who.sid, jti: 'fixed-jti' }))).status).toBe(200);
    expect((await postLogout(await logoutToken({ sub: who.sub, sid: who.sid, jti: 'fixed-jti' }))).status).toBe(400);
  }, 60_000);

  it('a token naming only the provider session (sid, no sub, as Ory Hydra sends) ends it too', async () => {
    who = { ...who, sub: `bcl-sid-${stamp}`, email: `bcl-sid-${stamp}@example.com`, sid: `mock-session-only-${stamp}` };
    const c = new Client(gw.url);
    await signIn(c);
    expect((await c.fetch('/now', { headers: { accept: 'application/json' } })).status).toBe(200);
    expect((await postLogout(await logoutToken({ sid: who.sid }))).status).toBe(200);
    expect((await c.fetch('/now', { headers: { accept: 'application/json' } })).status).toBe(401);
  }, 60_000);
});
