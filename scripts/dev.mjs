#!/usr/bin/env node
// `npm run dev`: prepares local state (dev-setup.mjs), starts the local companions that make
// the gateway usable with no account anywhere, then runs `wrangler dev` in front of them.
// Extra arguments go to wrangler: `npm run dev -- --port 9000`.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureDevVars, migrateLocal } from './dev-setup.mjs';
import { devOidcCompanion } from './dev/oidc-server.mjs';
import { echoOriginCompanion } from './dev/echo-origin.mjs';
import { mailCatcherCompanion } from './dev/mail-catcher.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Companions: each starts a local service and returns `{ vars, stop }`, where `vars` are
 * `--var NAME:value` settings for wrangler dev. Added by the features that need them.
 */
const companions = [devOidcCompanion, echoOriginCompanion, mailCatcherCompanion];

// Extra arguments go to wrangler. Given `--env-file`, wrangler reads that file instead of
// .dev.vars (the tests give their own), so the signing key and the settings below follow it.
const extra = process.argv.slice(2);
const { values: given } = parseArgs({
  args: extra,
  options: { port: { type: 'string' }, var: { type: 'string', multiple: true }, 'persist-to': { type: 'string' }, 'env-file': { type: 'string', multiple: true } },
  strict: false,
});
const envFiles = (given['env-file'] ?? []).map((f) => resolve(root, String(f)));
const devVarsFile = envFiles.at(-1) ?? join(root, '.dev.vars');

await ensureDevVars(devVarsFile);
const devVarsText = (envFiles.length ? envFiles : [devVarsFile]).map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('\n');

const vars = {};
const stops = [];
for (const start of companions) {
  const started = await start({ devVarsText, givenVars: given.var ?? [] });
  Object.assign(vars, started.vars);
  stops.push(started.stop);
}

// The committed wrangler.toml is production's (a bare deploy must fail closed), so local
// development gets its settings here: ENVIRONMENT=development, and a PUBLIC_URL on the port
// wrangler listens on (8787 unless `--port`), so that sign-in redirects and return_to checks
// name the origin the browser really uses. A value set yourself (`--var NAME:…` or .dev.vars)
// wins. (The shell's environment never reaches the Worker here: wrangler reads it only in
// place of a .dev.vars, and dev-setup.mjs always writes one.)
const setElsewhere = (name) =>
  (given.var ?? []).some((x) => String(x).startsWith(`${name}:`)) ||
  new RegExp(`^\\s*${name}\\s*=`, 'm').test(devVarsText);
if (!setElsewhere('ENVIRONMENT')) vars.ENVIRONMENT = 'development';
if (!setElsewhere('PUBLIC_URL')) vars.PUBLIC_URL = `http://localhost:${typeof given.port === 'string' ? given.port : '8787'}`;

// Migrate the local database wrangler dev will use (`--persist-to` moves it).
migrateLocal(typeof given['persist-to'] === 'string' ? ['--persist-to', given['persist-to']] : []);

const args = ['dev', ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]), ...extra];
const wrangler = spawn(join(root, 'node_modules', '.bin', 'wrangler'), args, { cwd: root, stdio: 'inherit' });

const shutdown = async (code) => {
  for (const stop of stops) await stop();
  process.exit(code ?? 0);
};
wrangler.on('exit', (code) => void shutdown(code));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => wrangler.kill(sig));
