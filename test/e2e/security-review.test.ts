/**
 * Security review, end to end: nginx `auth_request` configured as the README shows, in front of
 * an origin. A client-sent X-Forwarded-Uri (which nginx passes on to /auth/verify) must not
 * choose a laxer route's policy, and a cookie-authenticated cross-site POST must be refused.
 * Skips only when nginx is not installed, and never in CI (there a missing nginx fails the run).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, startGateway, type Gateway } from './harness';
import { nginxBin, startNginx, type Nginx } from './interop/nginx';
import { missingPeer } from './interop/processes';

describe.skipIf(missingPeer('nginx', nginxBin !== null))('nginx auth_request: the client cannot pick the policy or forge a cross-site write', () => {
  let gw: Gateway;
  let nginx: Nginx;
  let origin: Server;
  let base: string;
  const seen: string[] = [];

  beforeAll(async () => {
    const originPort = await freePort();
    gw = await startGateway({
      vars: {
        ROUTES: JSON.stringify([
          { path: '/pub', origin: `http://127.0.0.1:${originPort}`, auth: 'public' },
          { path: '/private', origin: `http://127.0.0.1:${originPort}`, auth: 'required' },
        ]),
      },
    });
    origin = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('ok');
    });
    await new Promise<void>((r) => origin.listen(originPort, '127.0.0.1', () => r()));
    nginx = await startNginx(gw.port, originPort);
    base = nginx.base;
  });
  afterAll(async () => {
    await nginx?.stop();
    origin?.closeAllConnections();
    await new Promise((r) => (origin ? origin.close(r) : r(undefined)));
    await gw?.stop();
  });

  it('a client-sent X-Forwarded-Uri naming the public route does not open /private', async () => {
    seen.length = 0;
    expect((await fetch(`${base}/pub/a`)).status).toBe(200);
    const r = await fetch(`${base}/private/page`, { headers: { 'x-forwarded-uri': '/pub/a' } });
    expect(r.status).toBe(403);
    expect(seen).toEqual(['GET /pub/a']);
  });

  it('a cookie-authenticated POST from another site is refused; the same POST from the same origin passes', async () => {
    const c = new Client(gw.url);
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email: `sec-${Date.now()}@example.com`, password: 'an interop passphrase, long', session: 'cookie' } });
    expect(reg.status, gw.logs().slice(-4000)).toBe(201);
    const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    seen.length = 0;
    const forged = await fetch(`${base}/private/transfer`, { method: 'POST', headers: { cookie, 'sec-fetch-site': 'same-site' }, body: 'x' });
    expect(forged.status).toBe(403);
    expect(seen).toEqual([]);
    const own = await fetch(`${base}/private/transfer`, { method: 'POST', headers: { cookie, 'sec-fetch-site': 'same-origin' }, body: 'x' });
    expect(own.status).toBe(200);
    expect(seen).toEqual(['POST /private/transfer']);
  });
});
