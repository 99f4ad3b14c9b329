/**
 * Security review, end to end: nginx `auth_request` configured as the README shows, in front of
 * an origin. A client-sent X-Forwarded-Uri (which nginx passes on to /auth/verify) must not
 * choose a laxer route's policy, and a cookie-authenticated cross-site POST must be refused.
 * Skips only when nginx is not installed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, startGateway, type Gateway } from './harness';
import { startPeer, systemBinary, type Peer } from './interop/processes';

const nginxBin = systemBinary('/usr/sbin/nginx', '/usr/bin/nginx');

function nginxConfig(dir: string, port: number, gatewayPort: number, originPort: number): string {
  return `
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location = /_gatehouse_verify {
      internal;
      proxy_pass http://127.0.0.1:${gatewayPort}/auth/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }
    location / {
      auth_request /_gatehouse_verify;
      auth_request_set $auth_user $upstream_http_x_auth_user_id;
      proxy_set_header X-Auth-User-Id $auth_user;
      proxy_pass http://127.0.0.1:${originPort};
    }
  }
}
`;
}

describe.skipIf(!nginxBin)('nginx auth_request: the client cannot pick the policy or forge a cross-site write', () => {
  let gw: Gateway;
  let nginx: Peer;
  let origin: Server;
  let dir: string;
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
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-sec-nginx-'));
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, gw.port, originPort));
    nginx = await startPeer(nginxBin!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'startup.log')], async () => {
      try {
        await fetch(base);
        return true;
      } catch {
        return false;
      }
    });
  });
  afterAll(async () => {
    await nginx?.stop();
    origin?.closeAllConnections();
    await new Promise((r) => (origin ? origin.close(r) : r(undefined)));
    await gw?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
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
