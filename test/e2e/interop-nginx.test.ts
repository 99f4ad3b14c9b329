/**
 * Interop: nginx (Debian) in front of an origin, using `auth_request` to the gateway's
 * /auth/verify. Without a session nginx refuses and the origin is never asked; with one, the
 * origin gets the identity headers nginx copied from the gateway's answer.
 * Skips only when nginx is not installed, and never in CI (there a missing nginx fails the run).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startGateway, type Gateway } from './harness';
import { nginxBin, startNginx, type Nginx } from './interop/nginx';
import { missingPeer } from './interop/processes';
import { startOrigin, type Origin } from './interop/origin';

describe.skipIf(missingPeer('nginx', nginxBin !== null))('nginx auth_request in front of an origin', () => {
  let gw: Gateway;
  let nginx: Nginx;
  let origin: Origin;
  let base: string;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    gw = await startGateway();
    origin = await startOrigin((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    });
    nginx = await startNginx(gw.port, origin.port);
    base = nginx.base;
  });
  afterAll(async () => {
    await nginx?.stop();
    await origin?.stop();
    await gw?.stop();
  });

  it('refuses a request without a session; the origin is never asked', async () => {
    seen.length = 0;
    const r = await fetch(`${base}/private/page`, { headers: { 'x-auth-user-id': 'spoofed' } });
    expect(r.status).toBe(401);
    expect(seen).toHaveLength(0);
  });

  it('lets a signed-in request through with identity headers from the gateway', async () => {
    seen.length = 0;
    const c = new Client(gw.url);
    const email = `nginx-${Date.now()}@example.com`;
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email, password: 'an interop passphrase, long', session: 'cookie' } });
    expect(reg.status, gw.logs().slice(-4000)).toBe(201);
    const cookie = c.cookieHeader();
    const r = await fetch(`${base}/private/page?x=1`, { headers: { cookie, 'x-auth-user-id': 'spoofed', 'x-auth-email': 'ceo@example.com' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ path: '/private/page?x=1' });
    expect(seen).toHaveLength(1);
    const h = seen[0]!;
    expect(h['x-auth-email']).toBe(email);
    expect(h['x-auth-user-id']).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(h['x-auth-user-id']).not.toBe('spoofed');
    expect(h['x-auth-session-id']).toBeTruthy();
    const claims = decodeJwt(h['x-auth-assertion'] as string);
    expect(claims).toMatchObject({ iss: gw.url, aud: gw.url, sub: h['x-auth-user-id'], email });

    // After sign-out the same cookie no longer gets through.
    expect((await c.fetch('/auth/logout', { method: 'POST', headers: { origin: gw.url } })).status).toBe(200);
    const after = await fetch(`${base}/private/page`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(seen).toHaveLength(1);
  });
});
