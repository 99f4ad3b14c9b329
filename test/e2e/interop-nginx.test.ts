/**
 * Interop: nginx (Debian) in front of an origin, using `auth_request` to the gateway's
 * /auth/verify. Without a session nginx refuses and the origin is never asked; with one, the
 * origin gets the identity headers nginx copied from the gateway's answer.
 * Skips only when nginx is not installed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, freePort, startGateway, type Gateway } from './harness';
import { startPeer, systemBinary, type Peer } from './interop/processes';

const nginxBin = systemBinary('/usr/sbin/nginx', '/usr/bin/nginx');

function nginxConfig(dir: string, port: number, gatewayPort: number, originPort: number): string {
  const identity = [
    ['X-Auth-User-Id', 'user'],
    ['X-Auth-Email', 'email'],
    ['X-Auth-Roles', 'roles'],
    ['X-Auth-Session-Id', 'sid'],
    ['X-Auth-Assertion', 'assertion'],
  ];
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
    }
    location / {
      auth_request /_gatehouse_verify;
${identity.map(([h, v]) => `      auth_request_set $auth_${v} $upstream_http_${h!.toLowerCase().replaceAll('-', '_')};\n      proxy_set_header ${h} $auth_${v};`).join('\n')}
      proxy_pass http://127.0.0.1:${originPort};
    }
  }
}
`;
}

describe.skipIf(!nginxBin)('nginx auth_request in front of an origin', () => {
  let gw: Gateway;
  let nginx: Peer;
  let origin: Server;
  let dir: string;
  let base: string;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    gw = await startGateway();
    const originPort = await freePort();
    origin = createServer((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((r) => origin.listen(originPort, '127.0.0.1', () => r()));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-'));
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
    const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
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
