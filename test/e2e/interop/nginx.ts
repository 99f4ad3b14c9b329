/**
 * A real nginx (Debian's) with `auth_request` to a gateway's /auth/verify, configured as the
 * README shows, in front of one origin, on free loopback ports with its own temp prefix.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness';
import { startPeer, systemBinary } from './processes';

export const nginxBin = systemBinary('/usr/sbin/nginx', '/usr/bin/nginx');

const IDENTITY = [
  ['X-Auth-User-Id', 'user'],
  ['X-Auth-Email', 'email'],
  ['X-Auth-Roles', 'roles'],
  ['X-Auth-Groups', 'groups'],
  ['X-Auth-Session-Id', 'sid'],
  ['X-Auth-Amr', 'amr'],
  ['X-Auth-Auth-Time', 'auth_time'],
  ['X-Auth-Client-Id', 'client_id'],
  ['X-Auth-Assertion', 'assertion'],
] as const;

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
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Original-Method $request_method;
    }
    location / {
      auth_request /_gatehouse_verify;
${IDENTITY.map(([h, v]) => `      auth_request_set $auth_${v} $upstream_http_${h.toLowerCase().replaceAll('-', '_')};\n      proxy_set_header ${h} $auth_${v};`).join('\n')}
      proxy_pass http://127.0.0.1:${originPort};
    }
  }
}
`;
}

export interface Nginx {
  base: string;
  stop: () => Promise<void>;
}

/** Starts nginx in front of `originPort`, asking the gateway on `gatewayPort`. */
export async function startNginx(gatewayPort: number, originPort: number): Promise<Nginx> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, gatewayPort, originPort));
  const peer = await startPeer(nginxBin!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'startup.log')], async () => {
    try {
      await fetch(base);
      return true;
    } catch {
      return false;
    }
  });
  return {
    base,
    stop: async () => {
      await peer.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
