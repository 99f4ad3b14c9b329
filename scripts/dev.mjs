#!/usr/bin/env node
// `npm run dev`: prepares local state (dev-setup.mjs), starts the local companions that make
// the gateway usable with no account anywhere, then runs `wrangler dev` in front of them.
// Extra arguments go to wrangler: `npm run dev -- --port 9000`.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

const args = ['dev', ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]), ...process.argv.slice(2)];
const wrangler = spawn(join(root, 'node_modules', '.bin', 'wrangler'), args, { cwd: root, stdio: 'inherit' });

const shutdown = async (code) => {
  for (const stop of stops) await stop();
  process.exit(code ?? 0);
};
wrangler.on('exit', (code) => void shutdown(code));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => wrangler.kill(sig));
