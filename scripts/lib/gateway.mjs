// A throwaway `wrangler dev` gateway on free loopback ports, with its own migrated local D1/KV
// state and signing key: shared by the e2e harness (test/e2e/harness.ts) and
// `npm run load-test -- --start`. Plain JavaScript so that both Node scripts and the tests can
// import it; its types are in gateway.d.mts.
//
// A gateway started here has exactly wrangler.toml's [vars] plus the settings the caller
// states: a developer's .dev.vars (or .env) never reaches it (see `isolatedEnvFile`).
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateSigningJwk } from '../../src/keys/generate-jwk.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');

/** Below Linux's ephemeral range (32768-60999), which outgoing connections take ports from. */
const PORT_RANGE = [20_000, 32_000];

/**
 * A loopback port free now. Not from the kernel's ephemeral range: between this check and
 * wrangler binding the port (seconds later, after its build), any outgoing connection of a test
 * running alongside could take an ephemeral port as its own.
 */
export async function freePort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = PORT_RANGE[0] + Math.floor(Math.random() * (PORT_RANGE[1] - PORT_RANGE[0]));
    if (await canListen(port)) return port;
  }
  return listenOn(0);
}

function canListen(port) {
  return listenOn(port).then(() => true, () => false);
}

function listenOn(port) {
  return new Promise((res, rej) => {
    const server = createServer();
    server.unref();
    server.on('error', rej);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address();
      server.close(() => res(bound));
    });
  });
}

/**
 * The environment for wrangler processes: no prompts, no metrics, and none of the variables
 * that make wrangler pick another environment or copy the shell's variables into the Worker.
 */
export function wranglerProcessEnv() {
  const env = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' };
  for (const name of ['CLOUDFLARE_ENV', 'CLOUDFLARE_INCLUDE_PROCESS_ENV', 'CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV']) delete env[name];
  return env;
}

/**
 * Writes an empty env file into `dir` for `wrangler dev --env-file`.
 * Given an env file, wrangler reads neither .dev.vars nor .env, so a developer's local settings
 * (ROUTES, ADMIN_EMAILS, ENVIRONMENT=production, ...) cannot change a test's result.
 */
export function isolatedEnvFile(dir) {
  const file = join(dir, 'test.env');
  writeFileSync(file, '');
  return file;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
export async function stopChild(child) {
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

/**
 * A fresh local state folder (D1, KV, Durable Objects) with the D1 migrations applied. The
 * caller removes it. A run that starts many gateways makes one and passes it to each
 * (`startGateway({ migrated })`): applying the migrations is a wrangler process of its own,
 * about as costly as starting the gateway itself.
 */
export async function migratedState() {
  const persist = mkdtempSync(join(tmpdir(), 'gatehouse-migrated-'));
  await promisify(execFile)(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist], { cwd: ROOT, env: wranglerProcessEnv() });
  return persist;
}

/**
 * Starts `wrangler dev` and resolves once `/auth/health` answers. A port taken between choosing
 * it and wrangler binding it (another test file's server) is retried on other ports.
 */
export async function startGateway(options = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOnce(options);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes('Address already in use')) throw err;
    }
  }
}

async function startGatewayOnce(options) {
  const port = await freePort();
  const inspectorPort = await freePort();
  // `localhost` for tests that need a domain name (WebAuthn refuses an IP address as rp id).
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  const persist = mkdtempSync(join(tmpdir(), 'gatehouse-gateway-'));
  const env = wranglerProcessEnv();
  // A copy of a migrated state (each gateway writes only its own), or migrate this one now.
  if (options.migrated) cpSync(options.migrated, persist, { recursive: true });
  else await promisify(execFile)(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist], { cwd: ROOT, env });
  const vars = {
    ENVIRONMENT: 'development',
    PUBLIC_URL: url,
    SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk()] }),
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
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const stop = async () => {
    await stopChild(child);
    rmSync(persist, { recursive: true, force: true });
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      rmSync(persist, { recursive: true, force: true });
      throw new Error(`wrangler dev exited early (${child.exitCode}):\n${output}`);
    }
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
