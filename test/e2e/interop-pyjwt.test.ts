/**
 * Interop: a Python origin that nobody here wrote the verifier of (PyJWT, Debian python3-jwt)
 * checks X-Auth-Assertion against the running gateway's /.well-known/jwks.json.
 * Skips only when /usr/bin/python3 with PyJWT is absent, and never in CI (there it fails the run).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, ROOT, startGateway, type Gateway } from './harness';
import { missingPeer, pythonImports, startPeer, systemBinary, type Peer } from './interop/processes';

const python = systemBinary('/usr/bin/python3');
const pyjwt = pythonImports(python, 'jwt', 'cryptography');

describe.skipIf(missingPeer('/usr/bin/python3 with PyJWT (python3-jwt, python3-cryptography)', pyjwt))('PyJWT origin behind the gateway', () => {
  let gw: Gateway;
  let origin: Peer;
  let originUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    originUrl = `http://127.0.0.1:${port}`;
    // The origin is also told when a session ends (README "Revocation", logout notices).
    const routes = [{ path: '/py', origin: originUrl, auth: 'required', strip_prefix: true, logout_notify: `${originUrl}/backchannel-logout` }];
    gw = await startGateway({ vars: { ROUTES: JSON.stringify(routes) } });
    origin = await startPeer(
      python!,
      [join(ROOT, 'test/e2e/interop/pyjwt_origin.py'), String(port), `${gw.url}/.well-known/jwks.json`, gw.url, originUrl],
      (out) => out.includes('ready'),
    );
  });
  afterAll(async () => {
    await origin?.stop();
    await gw?.stop();
  });

  it('verifies the assertion of a signed-in request, with the claims DESIGN.md names', async () => {
    const c = new Client(gw.url);
    const email = `py-${Date.now()}@example.com`;
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email, password: 'an interop passphrase, long' } });
    expect(reg.status, gw.logs().slice(-4000)).toBe(201);
    const { access_token, user } = (await reg.json()) as { access_token: string; user: { id: string } };

    const r = await c.fetch('/py/whoami', { headers: { authorization: `Bearer ${access_token}`, 'x-auth-user-id': 'spoofed' } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { verified: boolean; claims: Record<string, unknown>; lifetime: number; user_id_header: string };
    expect(body.verified).toBe(true);
    expect(body.claims).toMatchObject({ iss: gw.url, aud: originUrl, sub: user.id, email, email_verified: false });
    expect(Object.keys(body.claims).sort()).toEqual(['amr', 'aud', 'auth_time', 'email', 'email_verified', 'exp', 'groups', 'iat', 'iss', 'roles', 'sid', 'sub']);
    expect(body.lifetime).toBeLessThanOrEqual(60);
    expect(body.user_id_header).toBe(user.id);
  });

  it('the gateway refuses an anonymous request; the origin refuses one that bypasses the gateway', async () => {
    const anon = await fetch(`${gw.url}/py/whoami`, { headers: { accept: 'application/json' } });
    expect(anon.status).toBe(401);
    const direct = await fetch(`${originUrl}/whoami`, { headers: { 'x-auth-assertion': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.' } });
    expect(direct.status).toBe(401);
    expect(((await direct.json()) as { verified: boolean }).verified).toBe(false);
  });

  it('receives a logout notice when the session ends, verifies it with PyJWT (typ logout+jwt, its audience, the event, no nonce)', async () => {
    const c = new Client(gw.url);
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email: `py-out-${Date.now()}@example.com`, password: 'an interop passphrase, long' } });
    expect(reg.status, gw.logs().slice(-4000)).toBe(201);
    const { access_token, user } = (await reg.json()) as { access_token: string; user: { id: string } };
    const seen = await c.fetch('/py/whoami', { headers: { authorization: `Bearer ${access_token}` } });
    const { claims: assertion } = (await seen.json()) as { claims: { sid: string } };

    const out = await c.fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${access_token}` } });
    expect(out.status).toBe(200);
    type Notice = { verified: boolean; error?: string; claims?: Record<string, unknown> };
    const notices = async () => ((await (await fetch(`${originUrl}/notices`)).json()) as Notice[]).filter((n) => !n.verified || n.claims?.sid === assertion.sid);
    await expect.poll(notices, { timeout: 20_000, interval: 200 }).toHaveLength(1);
    const [notice] = await notices();
    expect(notice!.verified, JSON.stringify(notice)).toBe(true);
    expect(notice!.claims).toMatchObject({ iss: gw.url, aud: `${originUrl}/backchannel-logout`, sub: user.id, sid: assertion.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(Object.keys(notice!.claims!).sort()).toEqual(['aud', 'events', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub']);
  });
});
