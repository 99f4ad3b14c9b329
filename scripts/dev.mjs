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
import { givenSetting } from './dev/settings.mjs';
import { devOidcCompanion } from './dev/oidc-server.mjs';
import { echoOriginCompanion } from './dev/echo-origin.mjs';
import { mailCatcherCompanion } from './dev/mail-catcher.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Companions: each starts a local service and returns `{ vars, stop, links }`, where `vars` are
 * `--var NAME:value` settings for wrangler dev and `links` (`{ label, url, note }`, a url
 * starting with `/` being a path on the gateway) go into the block printed once it is ready.
 * Added by the features that need them.
 */
const companions = [devOidcCompanion, mailCatcherCompanion, echoOriginCompanion];

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
const links = [];
const listenPort = typeof given.port === 'string' ? given.port : '8787';
for (const start of companions) {
  const started = await start({ devVarsText, givenVars: given.var ?? [], environment: process.env, gatewayPort: listenPort });
  Object.assign(vars, started.vars);
  stops.push(started.stop);
  links.push(...(started.links ?? []));
}

// The committed wrangler.toml is production's (a bare deploy must fail closed), so local
// development gets its settings here: ENVIRONMENT=development, and a PUBLIC_URL on the port
// wrangler listens on (8787 unless `--port`), so that sign-in redirects and return_to checks
// name the origin the browser really uses. A value set yourself (`--var NAME:…` or .dev.vars)
// wins. (The shell's environment never reaches the Worker here: wrangler reads it only in
// place of a .dev.vars, and dev-setup.mjs always writes one; ROUTES is the exception,
// passed on by echo-origin.mjs.)
const setting = (name) => givenSetting(name, { givenVars: given.var ?? [], devVarsText })?.value;
if (setting('ENVIRONMENT') === undefined) vars.ENVIRONMENT = 'development';
if (setting('PUBLIC_URL') === undefined) vars.PUBLIC_URL = `http://localhost:${listenPort}`;
const gatewayUrl = (setting('PUBLIC_URL') ?? vars.PUBLIC_URL).replace(/\/+$/, '');
const authPrefix = setting('AUTH_PREFIX') ?? '/auth';

// Migrate the local database wrangler dev will use (`--persist-to` moves it).
migrateLocal(typeof given['persist-to'] === 'string' ? ['--persist-to', given['persist-to']] : []);

const args = ['dev', ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]), ...extra];
const wrangler = spawn(join(root, 'node_modules', '.bin', 'wrangler'), args, { cwd: root, stdio: 'inherit' });

/**
 * The last thing `npm run dev` prints: the few URLs that matter, once the gateway answers.
 * wrangler keeps the terminal (its output is not piped, so its hotkeys still work); a request
 * is held until the Worker is ready, so the first answer comes after wrangler's tables and its
 * "Ready on" line. The short pause lets wrangler log that request before the block.
 */
async function announceWhenReady() {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && wrangler.exitCode === null) {
    try {
      // The local listener, whatever PUBLIC_URL says (it may name a host that is not this one).
      await fetch(`http://localhost:${listenPort}${authPrefix}/health`, { redirect: 'manual', signal: AbortSignal.timeout(60_000) });
      await new Promise((r) => setTimeout(r, 750));
      const rows = [{ label: 'sign-in page', url: `${authPrefix}/login` }, ...links].map(({ label, url, note }) => {
        const href = url.startsWith('/') ? `${gatewayUrl}${url}` : url;
        return `  ${label.padEnd(14)}${href}${note ? `  ${note}` : ''}`;
      });
      console.log(['', `[gatehouse] ready at ${gatewayUrl}`, ...rows, ''].join('\n'));
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
void announceWhenReady();

const shutdown = async (code) => {
  for (const stop of stops) await stop();
  process.exit(code ?? 0);
};
wrangler.on('exit', (code) => void shutdown(code));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => wrangler.kill(sig));
