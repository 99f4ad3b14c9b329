// A demo origin for `npm run dev`: a tiny HTTP server on loopback that answers every request
// with the headers it received (as an HTML page, or JSON when asked), so a newcomer sees
// Gatehouse's identity headers and X-Auth-Assertion arrive. It is wired in through ROUTES:
//   /         -> auth = "optional"  (anonymous visitors get no identity headers)
//   /private  -> auth = "required"  (sign-in first)
//   /eng      -> auth = "required", allow = { groups = ["eng"] }  (the dev sign-in's dev@example.com is in eng)
// and, to show single sign-on across hosts (README "Hosts"), two app hosts on `*.localhost`
// names (browsers resolve them to loopback and treat them as secure, so `__Host-` cookies work
// over http there):
//   app.localhost:<port>, wiki.localhost:<port>  -> auth = "required"
// Its page offers a "Sign out" button (a form post to /auth/logout on the host it is shown on).
// A ROUTES you set yourself wins, and then no demo origin starts: `--var ROUTES:…`, then the
// environment (`ROUTES='[…]' npm run dev`: passed on to the Worker, which otherwise never sees
// the shell's variables), then the env file (.dev.vars), then wrangler.toml's [vars]. What is
// announced is always the routes the gateway really has.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { givenSetting } from './settings.mjs';

const HOST = '127.0.0.1';
/** The app hosts of the demo: single sign-on across hosts, on names that resolve to loopback. */
export const DEMO_HOSTS = ['app.localhost', 'wiki.localhost'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const escape = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The assertion's claims, decoded for display only: a real origin verifies it (README, "Protecting origins"). */
function claimsOf(assertion) {
  try {
    return JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

function page(req) {
  const rows = Object.entries(req.headers)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `<tr${k.startsWith('x-auth-') ? ' class="id"' : ''}><th>${escape(k)}</th><td>${escape(v)}</td></tr>`)
    .join('');
  const assertion = req.headers['x-auth-assertion'];
  const claims = assertion ? claimsOf(String(assertion)) : null;
  return `<!doctype html><meta charset="utf-8"><title>Gatehouse echo origin</title>
<style>body{font:14px system-ui;margin:2rem;max-width:60rem}th{text-align:left;padding-right:1rem;vertical-align:top}td{word-break:break-all}.id{background:#e8f5e9}</style>
<h1>Echo origin</h1>
<p>${claims ? `Signed in as <b>${escape(claims.email)}</b> (roles: ${escape((claims.roles ?? []).join(', ') || 'none')}).` : 'Anonymous: no identity headers.'}
 <a href="/private">/private</a> needs sign-in · <a href="/auth/login?return_to=/private">sign in</a> · <a href="/auth/account">account</a></p>
${claims ? '<form method="post" action="/auth/logout"><button type="submit">Sign out</button></form>' : ''}
<p>${escape(req.method)} ${escape(req.headers['x-forwarded-host'] ?? '')}${escape(req.url)}</p>
<table>${rows}</table>
${claims ? `<h2>X-Auth-Assertion claims (unverified here)</h2><pre>${escape(JSON.stringify(claims, null, 2))}</pre>` : ''}`;
}

/** Starts the echo origin; `port` 0 picks a free one. Resolves `{ url, stop }`. */
export async function startEchoOrigin({ port = Number(process.env.ECHO_ORIGIN_PORT || 8789) } = {}) {
  const server = createServer((req, res) => {
    const json = (req.headers.accept ?? '').includes('application/json');
    res.setHeader('cache-control', 'no-store');
    if (json) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }, null, 2));
    } else {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(page(req));
    }
  });
  const listen = (p) =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, HOST, resolve);
    });
  // A taken default port is no reason to fail `npm run dev`: any free port will do.
  await listen(port).catch((e) => (e.code === 'EADDRINUSE' && port !== 0 ? listen(0) : Promise.reject(e)));
  const url = `http://${HOST}:${server.address().port}`;
  return { url, stop: () => new Promise((r) => server.close(() => r(undefined))) };
}

/** The ROUTES the developer set, and where: `{ value, source }` (value undefined for wrangler.toml's TOML). */
function routesSetElsewhere({ devVarsText, givenVars, environment }) {
  const flag = givenSetting('ROUTES', { givenVars });
  if (flag) return flag;
  if (environment.ROUTES) return { value: environment.ROUTES, source: 'the environment (ROUTES=…)' };
  const file = givenSetting('ROUTES', { devVarsText });
  if (file) return file;
  const toml = join(root, 'wrangler.toml');
  if (existsSync(toml) && /^\s*ROUTES\s*=/m.test(readFileSync(toml, 'utf8'))) return { value: undefined, source: 'wrangler.toml' };
  return undefined;
}

/** The developer's routes as `links` for the ready block, or a warning when they do not parse. */
function describeRoutes(value) {
  let routes;
  try {
    routes = typeof value === 'string' ? JSON.parse(value) : undefined;
  } catch {
    return { links: [], warning: 'ROUTES is not valid JSON: the gateway will answer every request with configuration_error naming ROUTES' };
  }
  if (!Array.isArray(routes)) return { links: [], warning: undefined };
  const links = routes
    .filter((r) => r && typeof r.path === 'string')
    .map((r) => ({ label: 'route', url: r.path, note: `-> ${r.origin ?? '?'} (auth: ${r.auth ?? 'required'})` }));
  return { links, warning: undefined };
}

/**
 * The `companions` entry for scripts/dev.mjs. Resolves `{ vars, stop, links }`: `links` are
 * the routes for the ready block (paths on the gateway).
 */
export async function echoOriginCompanion({ devVarsText = '', givenVars = [], environment = process.env, gatewayPort = '8787' } = {}) {
  const mine = routesSetElsewhere({ devVarsText, givenVars, environment });
  if (mine) {
    const { links, warning } = describeRoutes(mine.value);
    const listed = links.map((l) => `${l.url} ${l.note}`).join(', ');
    console.log(`[gatehouse] ROUTES from ${mine.source}: no demo origin${listed ? `; routes: ${listed}` : ''}`);
    if (warning) console.log(`[gatehouse] ${warning}`);
    // Only the environment's value needs passing on: wrangler reads --var, the env file and
    // wrangler.toml itself.
    const vars = mine.source.startsWith('the environment') ? { ROUTES: mine.value } : {};
    return { vars, stop: async () => {}, links };
  }
  const { url, stop } = await startEchoOrigin();
  const routes = [
    { path: '/', origin: url, auth: 'optional' },
    { path: '/private', origin: url, auth: 'required' },
    // A group rule: the dev sign-in's dev@example.com is in `eng` (scripts/dev/oidc-server.mjs).
    { path: '/eng', origin: url, auth: 'required', allow: { groups: ['eng'] } },
    ...DEMO_HOSTS.map((host) => ({ host, path: '/', origin: url, auth: 'required' })),
  ];
  console.log(`[gatehouse] demo echo origin at ${url}: open / (anonymous) or /private (sign-in) through the gateway to see the identity headers`);
  const links = [
    { label: 'demo route', url: '/private', note: '(sign-in first; / shows an anonymous visit; /eng admits the group eng only)' },
    { label: 'app host', url: `http://${DEMO_HOSTS[0]}:${gatewayPort}/`, note: '(another host: one sign-in serves both)' },
    { label: 'second host', url: `http://${DEMO_HOSTS[1]}:${gatewayPort}/`, note: '(sign out on one ends both)' },
  ];
  return { vars: { ROUTES: JSON.stringify(routes) }, stop, links };
}
