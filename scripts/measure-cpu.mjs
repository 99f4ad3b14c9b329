#!/usr/bin/env node
// `npm run measure:cpu`: CPU time per request of Gatehouse's main request kinds, in workerd.
//
// workerd does not report CPU per request locally, and a Worker's own clock stands still while
// it computes, so this measures the workerd process from outside: the CPU time of all its
// threads (/proc/<pid>/task/*/schedstat, nanoseconds; /proc/<pid>/stat ticks as a fallback)
// across N sequential requests of one kind, minus what the idle process burns in the same wall
// time, divided by N. CPU time, not wall time, so other load on the machine barely moves it.
//
// The process also runs the local D1 and KV simulators and parses HTTP, which in production
// happen outside the Worker's CPU budget: the figures are upper bounds. "net" subtracts the
// cost of the cheapest request (GET /auth/health) to show the Worker's own share.
//
// The bundle is what `wrangler deploy` uploads (`--dry-run --outdir`), run by Miniflare's
// workerd with local D1, KV and a rate limiter, and a local origin. Loopback only; bounded
// counts (MEASURE_SCALE multiplies them, default 1; MEASURE_ROUNDS rounds, default 3, median).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';
import { generateSigningJwk } from '../src/keys/generate-jwk.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const SCALE = Number(process.env.MEASURE_SCALE ?? 1);
const ROUNDS = Number(process.env.MEASURE_ROUNDS ?? 3);
// wrangler's own miniflare, so this runs the workerd that `wrangler dev` runs (as bench/run.mjs).
const { Miniflare } = createRequire(join(root, 'node_modules', 'wrangler', 'package.json'))('miniflare');
const COMPAT_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(root, 'wrangler.toml'), 'utf8'))[1];
const work = mkdtempSync(join(tmpdir(), 'gatehouse-cpu-'));
const cleanups = [];
const log = (...a) => console.log('[measure-cpu]', ...a);

// ---- CPU time of a process tree, from /proc ------------------------------------------------

function childrenOf(pid) {
  const kids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) kids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return kids;
}

function workerdPids(pid = process.pid) {
  const found = [];
  for (const kid of childrenOf(pid)) {
    if (readFileSync(`/proc/${kid}/comm`, 'utf8').trim() === 'workerd') found.push(kid);
    else found.push(...workerdPids(kid));
  }
  return found;
}

/** Starts something that spawns one workerd, and returns its result and that workerd's pid. */
async function withNewWorkerd(start) {
  const before = new Set(workerdPids());
  const result = await start();
  const pid = workerdPids().find((p) => !before.has(p));
  if (!pid) throw new Error('could not find the new workerd process under this one');
  return { result, pid };
}

const TICK_NS = 1e9 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU nanoseconds of every thread of `pid`, and which source gave them. */
function cpuNs(pid) {
  try {
    let sum = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) sum += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    return { ns: sum, source: 'schedstat' };
  } catch {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ns: (Number(fields[11]) + Number(fields[12])) * TICK_NS, source: 'stat' };
  }
}

// ---- The Worker under test -----------------------------------------------------------------

function bundle() {
  const out = join(work, 'bundle');
  execFileSync(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', out], {
    cwd: root,
    env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return out;
}

async function startOrigin() {
  const child = spawn(process.execPath, [join(here, 'bench', 'origin.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(async () => child.kill('SIGTERM'));
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', (c) => reject(new Error(`origin exited ${c}`)));
  });
  return `http://127.0.0.1:${port}`;
}

async function startGatehouse(dir, origin) {
  const signingJwk = await generateSigningJwk('ES256');
  // index.js and the chunks it loads (scripts/build.mjs splits the Worker), and text modules.
  const manifest = { mainModule: 'index.js', modules: {} };
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.txt'))) {
    manifest.modules[f] = { type: f.endsWith('.js') ? 'esm' : 'text', contents: readFileSync(join(dir, f), 'utf8') };
  }
  const text = (value) => ({ type: 'text', value });
  const env = {
    ENVIRONMENT: text('development'),
    PUBLIC_URL: text('http://127.0.0.1'),
    SIGNING_KEYS: text(JSON.stringify({ keys: [signingJwk] })),
    ROUTES: text(JSON.stringify([{ path: '/app', origin, auth: 'required' }])),
    DB: { type: 'd1', id: 'cpu-db' },
    REVOKED: { type: 'kv', id: 'cpu-revoked' },
    RATE_LIMITER: { type: 'rate-limit', namespace: '1001', simple: { limit: 100_000, period: 60 } },
  };
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    handleStructuredLogs: () => {},
    workers: [{ config: { name: 'gatehouse', compatibilityDate: COMPAT_DATE, compatibilityFlags: ['nodejs_compat'], manifest, env } }],
  });
  cleanups.push(() => mf.dispose());
  const url = (await mf.ready).href.replace(/\/$/, '');
  const db = await mf.getD1Database('DB');
  for (const file of readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.sql')).sort()) {
    const sql = readFileSync(join(root, 'migrations', file), 'utf8').replace(/^\s*--.*$/gm, '');
    for (const statement of sql.split(/;\s*$/m).map((x) => x.trim()).filter(Boolean)) await db.prepare(statement).run();
  }
  return url;
}

/**
 * A Worker that runs D1_STATEMENTS statements against local D1 per request, like a refresh
 * does (read the session, read the user, rotate, audit): the local D1 simulator's share.
 */
const D1_STATEMENTS = 4;
async function startD1Probe() {
  const script = `export default { async fetch(request, env) {
    const id = crypto.randomUUID();
    await env.DB.prepare('INSERT INTO probe (id, value, at) VALUES (?, ?, ?)').bind(id, 'x'.repeat(64), Date.now()).run();
    await env.DB.prepare('SELECT * FROM probe WHERE id = ?').bind(id).first();
    await env.DB.prepare('UPDATE probe SET value = ?, at = ? WHERE id = ?').bind('y'.repeat(64), Date.now(), id).run();
    await env.DB.prepare('SELECT * FROM probe WHERE id = ?').bind(id).first();
    return new Response('ok');
  } };`;
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [{ config: { name: 'd1-probe', compatibilityDate: COMPAT_DATE, manifest: { mainModule: 'index.js', modules: { 'index.js': { type: 'esm', contents: script } } }, env: { DB: { type: 'd1', id: 'probe-db' } } } }],
  });
  cleanups.push(() => mf.dispose());
  const url = (await mf.ready).href.replace(/\/$/, '');
  await (await mf.getD1Database('DB')).prepare('CREATE TABLE probe (id TEXT PRIMARY KEY, value TEXT, at INTEGER)').run();
  return url;
}

// ---- Requests --------------------------------------------------------------------------------

let base = '';
const PASSWORD = 'a measured passphrase, long enough';
let counter = 0;

async function request(path, init, want) {
  const r = await fetch(`${base}${path}`, init);
  const text = await r.text();
  if (r.status !== want) throw new Error(`${init?.method ?? 'GET'} ${path}: expected ${want}, got ${r.status} ${text.slice(0, 200)}`);
  return text;
}

const json = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function register() {
  const email = `cpu-${process.pid}-${++counter}@example.com`;
  const body = JSON.parse(await request('/auth/register', json({ email, password: PASSWORD }), 201));
  return { email, access: body.access_token, refresh: body.refresh_token };
}

/** Each kind: `prepare()` once per round, then `run(state)` N times, sequentially. */
function kinds() {
  let account;
  let refresh;
  return [
    { name: 'GET /auth/health (cheapest request, reference)', n: 200, run: () => request('/auth/health', undefined, 200) },
    {
      name: 'proxied request, verified bearer token',
      n: 300,
      prepare: async () => (account = await register()),
      run: () => request('/app/item?x=1', { headers: { authorization: `Bearer ${account.access}` } }, 200),
    },
    {
      name: 'POST /auth/refresh (rotation)',
      n: 100,
      prepare: async () => (refresh = (await register()).refresh),
      run: async () => (refresh = JSON.parse(await request('/auth/refresh', json({ refresh_token: refresh }), 200)).refresh_token),
    },
    {
      name: 'POST /auth/login (password sign-in)',
      n: 15,
      prepare: async () => (account = await register()),
      run: () => request('/auth/login', json({ email: account.email, password: PASSWORD }), 200),
    },
    { name: 'POST /auth/register (registration)', n: 15, run: () => register() },
  ];
}

async function measure(pid, kind) {
  const n = Math.max(1, Math.round(kind.n * SCALE));
  await kind.prepare?.();
  for (let i = 0; i < 3; i++) await kind.run(); // warm-up: JIT, first-use parsing
  const t0 = performance.now();
  const c0 = cpuNs(pid).ns;
  for (let i = 0; i < n; i++) await kind.run();
  const c1 = cpuNs(pid).ns;
  return { n, cpuNs: c1 - c0, wallMs: performance.now() - t0 };
}

async function idleNsPerMs(pid) {
  const t0 = performance.now();
  const c0 = cpuNs(pid).ns;
  await sleep(2000);
  return (cpuNs(pid).ns - c0) / (performance.now() - t0);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  log(`workerd via Miniflare, compatibility_date ${COMPAT_DATE}; ${ROUNDS} rounds, scale ${SCALE}`);
  const dir = bundle();
  const origin = await startOrigin();
  const gatehouse = await withNewWorkerd(() => startGatehouse(dir, origin));
  base = gatehouse.result;
  const pid = gatehouse.pid;
  const probe = await withNewWorkerd(startD1Probe);
  log(`workerd pids ${pid} (Gatehouse), ${probe.pid} (D1 probe); CPU from /proc/<pid>/${cpuNs(pid).source}`);
  const probeKind = { name: `D1 probe: ${D1_STATEMENTS} statements, no Gatehouse`, n: 100, run: async () => (await fetch(probe.result)).text() };

  const list = kinds();
  const results = new Map([...list, probeKind].map((k) => [k.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    const idle = await idleNsPerMs(pid);
    for (const kind of list) {
      const r = await measure(pid, kind);
      results.get(kind.name).push((r.cpuNs - idle * r.wallMs) / r.n / 1e6);
    }
    const probeIdle = await idleNsPerMs(probe.pid);
    const r = await measure(probe.pid, probeKind);
    results.get(probeKind.name).push((r.cpuNs - probeIdle * r.wallMs) / r.n / 1e6);
    log(`round ${round} done (idle workerd: ${(idle / 1e3).toFixed(2)} ms CPU per second)`);
  }
  const reference = median(results.get(list[0].name));
  console.log('\nCPU time per request in workerd (median of rounds; ms)');
  console.log('request'.padEnd(48), 'process'.padStart(8), 'net'.padStart(8));
  for (const kind of list) {
    const ms = median(results.get(kind.name));
    const net = kind === list[0] ? '' : (ms - reference).toFixed(2);
    console.log(kind.name.padEnd(48), ms.toFixed(2).padStart(8), net.padStart(8));
  }
  console.log(probeKind.name.padEnd(48), median(results.get(probeKind.name)).toFixed(2).padStart(8));
  console.log('\nprocess: whole workerd process (Worker + local D1/KV simulators + HTTP), idle subtracted.');
  console.log('net: minus the reference request. The Workers Free plan allows 10 ms CPU per request.');
  console.log(`D1 probe: what ${D1_STATEMENTS} statements cost the local D1 simulator (a request of its own, in its own workerd);`);
  console.log('in production D1 runs outside the Worker, so a refresh (4-5 statements) costs the Worker about that much less.');
} finally {
  for (const f of cleanups.reverse()) await f().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
