#!/usr/bin/env node
// `npm run dev`: prepares local state (dev-setup.mjs), starts the local companions that make
// the gateway usable with no account anywhere, then runs `wrangler dev` in front of them.
// Extra arguments go to wrangler: `npm run dev -- --port 9000`.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureDevVars, migrateLocal } from './dev-setup.mjs';
import { devOidcCompanion } from './dev/oidc-server.mjs';
import { echoOriginCompanion } from './dev/echo-origin.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Companions: each starts a local service and returns `{ vars, stop }`, where `vars` are
 * `--var NAME:value` settings for wrangler dev. Added by the features that need them.
 */
const companions = [devOidcCompanion, echoOriginCompanion];

await ensureDevVars();
migrateLocal();

const vars = {};
const stops = [];
for (const start of companions) {
  const started = await start();
  Object.assign(vars, started.vars);
  stops.push(started.stop);
}

// wrangler.toml's PUBLIC_URL names port 8787; on another `--port` the sign-in redirects and
// return_to checks need the origin the browser really uses, unless PUBLIC_URL is set elsewhere
// (`--var PUBLIC_URL:…`, .dev.vars or the environment).
const extra = process.argv.slice(2);
const { values: given } = parseArgs({ args: extra, options: { port: { type: 'string' }, var: { type: 'string', multiple: true } }, strict: false });
const devVarsFile = join(root, '.dev.vars');
const publicUrlSet =
  (given.var ?? []).some((x) => String(x).startsWith('PUBLIC_URL:')) ||
  process.env.PUBLIC_URL !== undefined ||
  (existsSync(devVarsFile) && /^\s*PUBLIC_URL\s*=/m.test(readFileSync(devVarsFile, 'utf8')));
if (typeof given.port === 'string' && given.port !== '8787' && !publicUrlSet) vars.PUBLIC_URL = `http://localhost:${given.port}`;

const args = ['dev', ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]), ...extra];
const wrangler = spawn(join(root, 'node_modules', '.bin', 'wrangler'), args, { cwd: root, stdio: 'inherit' });

const shutdown = async (code) => {
  for (const stop of stops) await stop();
  process.exit(code ?? 0);
};
wrangler.on('exit', (code) => void shutdown(code));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => wrangler.kill(sig));
