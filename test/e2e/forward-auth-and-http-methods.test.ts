/**
 * Forward-auth and HTTP methods end to end: nginx `auth_request` configured as the README shows, in front of
 * an origin. A client-sent X-Forwarded-Uri (which nginx passes on to /auth/verify) must not
 * choose a laxer route's policy, a cookie-authenticated cross-site POST must be refused, and a
 * raw path with `//` or `\` (as `curl --path-as-is` sends it) must not be read as another route.
 * Skips only when nginx is not installed, and never in CI (there a missing nginx fails the run).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, startGateway, type Gateway } from './harness';
import { nginxBin, startNginx, type Nginx } from './interop/nginx';
import { missingPeer } from './interop/processes';
import { startOrigin, type Origin } from './interop/origin';

describe.skipIf(missingPeer('nginx', nginxBin !== null))('nginx auth_request: the client cannot pick the policy or forge a cross-site write', () => {
  let gw: Gateway;
  let nginx: Nginx;
  let origin: Origin;
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
    origin = await startOrigin((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('ok');
    }, originPort);
    nginx = await startNginx(gw.port, originPort);
    base = nginx.base;
  });
  afterAll(async () => {
    await nginx?.stop();
    await origin?.stop();
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
    const cookie = c.cookieHeader();
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
    const cookie = c.cookieHeader();
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

describe('TRACE, TRACK and CONNECT at the gateway (wrangler dev, real HTTP)', () => {
  let gw: Gateway;
  let origin: Origin;
  const seen: string[] = [];

  beforeAll(async () => {
    const originPort = await freePort();
    gw = await startGateway({ vars: { ROUTES: JSON.stringify([{ path: '/pub', origin: `http://127.0.0.1:${originPort}`, auth: 'public' }]) } });
    origin = await startOrigin((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('ok');
    }, originPort);
  });
  afterAll(async () => {
    await origin?.stop();
    await gw?.stop();
  });

  it('none reaches the origin: TRACE gets the gateway\'s 405 with Allow, the runtime itself refuses TRACK and CONNECT', async () => {
    const trace = await raw(gw.url, 'TRACE', '/pub/x');
    expect(trace.status).toBe(405);
    expect(trace.allow).toBe('GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
    expect(JSON.parse(trace.body)).toMatchObject({ error: 'method_not_allowed' });
    expect((await raw(gw.url, 'TRACK', '/pub/x')).status).toBeGreaterThanOrEqual(400);
    expect((await raw(gw.url, 'CONNECT', '127.0.0.1:1')).status).toBeGreaterThanOrEqual(400);
    expect(seen).toEqual([]);
  });
});

/** One request with any method and a raw path; a CONNECT's answer counts like any other. */
function raw(base: string, method: string, path: string): Promise<{ status: number; allow: string | undefined; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }));
    });
    req.on('connect', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

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
