/**
 * Security review, end to end: nginx `auth_request` configured as the README shows, in front of
 * an origin. A client-sent X-Forwarded-Uri (which nginx passes on to /auth/verify) must not
 * choose a laxer route's policy, a cookie-authenticated cross-site POST must be refused, and a
 * raw path with `//` or `\` (as `curl --path-as-is` sends it) must not be read as another route.
 * Skips only when nginx is not installed.
 */
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, startGateway, type Gateway } from './harness';
import { nginxBin, startNginx, type Nginx } from './interop/nginx';

describe.skipIf(!nginxBin)('nginx auth_request: the client cannot pick the policy or forge a cross-site write', () => {
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
          { path: '/ops', origin: `http://127.0.0.1:${originPort}`, auth: 'required', allow: { roles: ['ops'] } },
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

  it('raw paths with // or \\ are refused for anonymous and non-ops users; the origin is never asked', async () => {
    const c = new Client(gw.url);
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email: `raw-${Date.now()}@example.com`, password: 'an interop passphrase, long', session: 'cookie' } });
    expect(reg.status, gw.logs().slice(-4000)).toBe(201);
    const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    seen.length = 0;
    // Controls: the public route is open, /ops is closed to this user by policy.
    expect(await rawGet(base, '/pub/x')).toBe(200);
    expect(await rawGet(base, '/ops/deploy', { cookie })).toBe(403);
    expect(seen).toEqual(['GET /pub/x']);
    seen.length = 0;
    for (const path of ['//ops/pub/x', '/ops\\..\\pub', '/ops/x\\..\\..\\pub/y', '//ops/deploy']) {
      expect(await rawGet(base, path), `anonymous ${path}`).toBe(403);
      expect(await rawGet(base, path, { cookie }), `signed in ${path}`).toBe(403);
    }
    expect(seen).toEqual([]);
  });
});

/** A GET with the path exactly as given (fetch would normalise `//` and `\\`, like curl without --path-as-is). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
