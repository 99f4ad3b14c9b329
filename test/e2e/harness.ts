/**
 * End-to-end harness: starts a real `wrangler dev` on free ports with its own local D1/KV
 * state (migrated first), and gives tests a small cookie-aware HTTP client.
 *
 * A gateway started here has exactly wrangler.toml's [vars] plus the settings the test states:
 * a developer's .dev.vars (or .env) never reaches it (see `isolatedEnvFile`).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

export const ROOT = resolve(import.meta.dirname, '..', '..');
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.unref();
    server.on('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => res(port));
    });
  });
}

/**
 * The environment for wrangler processes: no prompts, no metrics, and none of the variables
 * that make wrangler pick another environment or copy the shell's variables into the Worker.
 */
export function wranglerProcessEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };
  for (const name of ['CLOUDFLARE_ENV', 'CLOUDFLARE_INCLUDE_PROCESS_ENV', 'CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV']) delete env[name];
  return env;
}

/**
 * Writes an empty env file into `dir` for `wrangler dev --env-file`.
 * Given an env file, wrangler reads neither .dev.vars nor .env, so a developer's local settings
 * (ROUTES, ADMIN_EMAILS, ENVIRONMENT=production, ...) cannot change a test's result.
 */
export function isolatedEnvFile(dir: string): string {
  const file = join(dir, 'test.env');
  writeFileSync(file, '');
  return file;
}

export async function signingKeys(): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify({ keys: [{ ...jwk, kid: `e2e-${(await calculateJwkThumbprint(jwk)).slice(0, 8)}`, alg: 'ES256', use: 'sig' }] });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      r(undefined);
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      r(undefined);
    });
  });
}

export interface Gateway {
  url: string;
  port: number;
  process: ChildProcess;
  logs: () => string;
  stop: () => Promise<void>;
}

export interface GatewayOptions {
  /** Settings passed as `--var NAME:value` (override wrangler.toml's [vars]); the only settings added. */
  vars?: Record<string, string>;
  /** Extra wrangler dev arguments. */
  args?: string[];
}

/** Starts `wrangler dev` and resolves once `/auth/health` answers. */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const persist = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
  const env = wranglerProcessEnv();
  await promisify(execFile)(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist], { cwd: ROOT, env });
  const vars: Record<string, string> = {
    ENVIRONMENT: 'development',
    PUBLIC_URL: url,
    SIGNING_KEYS: await signingKeys(),
    ...options.vars,
  };
  const args = [
    'dev',
    '--port', String(port),
    '--inspector-port', String(inspectorPort),
    '--ip', '127.0.0.1',
    '--persist-to', persist,
    '--env-file', isolatedEnvFile(persist),
    '--show-interactive-dev-session=false',
    ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
    ...(options.args ?? []),
  ];
  const child = spawn(WRANGLER, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const stop = async () => {
    await stopChild(child);
    rmSync(persist, { recursive: true, force: true });
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early (${child.exitCode}):\n${output}`);
    try {
      const r = await fetch(`${url}/auth/health`);
      if (r.ok) return { url, port, process: child, logs: () => output, stop };
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`wrangler dev did not become healthy:\n${output}`);
}

/** A minimal browser-like client: keeps cookies per name, never follows redirects by itself. */
export class Client {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async fetch(path: string, init: RequestInit & { json?: unknown; form?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    } else if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = new URLSearchParams(init.form).toString();
    }
    const url = new URL(path, this.base);
    if (this.cookies.size && url.origin === new URL(this.base).origin) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}
