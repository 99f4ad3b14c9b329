#!/usr/bin/env node
// `npm run bench`: Gatehouse's proxy overhead, measured against workerd run directly through
// Miniflare's API (no wrangler dev proxy), on loopback, with a local origin and autocannon.
//   (a) a pass-through Worker with no auth
//   (b) Gatehouse, a valid bearer token on a `required` route (KV revocation check, identity
//       headers and the signed assertion included)
//   (c) Hono's jwk() middleware + hono/proxy: "what a user would write instead"
// plus the in-workerd cost of Gatehouse's verify step against a bare crypto.subtle.verify, and
// the gzip size of the bundle `wrangler deploy --dry-run --outdir` produces.
// Bounded: BENCH_DURATION seconds per run (default 10), BENCH_ROUNDS rounds (default 2),
// BENCH_CONNECTIONS connections (default 16). Loopback only.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import autocannon from 'autocannon';
import { build } from 'esbuild';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { Miniflare } from 'miniflare';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const COMPAT_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(root, 'wrangler.toml'), 'utf8'))[1];
const work = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const cleanups = [];
const log = (...a) => console.log('[bench]', ...a);

async function cleanup() {
  for (const f of cleanups.reverse()) await f().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}

function wrangler(args) {
  return execFileSync(join(root, 'node_modules', '.bin', 'wrangler'), args, {
    cwd: root,
    env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The production bundle, as `wrangler deploy` would upload it, and its gzip size. */
function bundleGatehouse(extra = [], name = 'gatehouse') {
  const out = join(work, name);
  const report = wrangler(['deploy', '--dry-run', '--outdir', out, ...extra]);
  const reported = /gzip:\s*([\d.]+)\s*KiB/.exec(report)?.[1];
  const files = readdirSync(out).filter((f) => !f.endsWith('.map') && f !== 'README.md');
  const gzipBytes = files.reduce((sum, f) => sum + gzipSync(readFileSync(join(out, f)), { level: 9 }).length, 0);
  const rawBytes = files.reduce((sum, f) => sum + statSync(join(out, f)).size, 0);
  return { dir: out, files, reportedGzipKiB: reported ? Number(reported) : null, gzipBytes, rawBytes };
}

async function bundle(entry, name) {
  const outfile = join(work, `${name}.js`);
  await build({
    entryPoints: [join(here, 'workers', entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    target: 'es2022',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

async function startOrigin() {
  const child = spawn(process.execPath, [join(here, 'origin.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(async () => child.kill('SIGTERM'));
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', (c) => reject(new Error(`origin exited ${c}`)));
  });
  return `http://127.0.0.1:${port}`;
}

/** One Worker in its own workerd, through Miniflare's API. `modules` maps names to files. */
async function worker({ name, main, modules = {}, flags = [], vars = {}, d1 = false, kv = [] }) {
  const manifest = { mainModule: 'index.js', modules: { 'index.js': { type: 'esm', contents: readFileSync(main, 'utf8') } } };
  for (const [moduleName, path] of Object.entries(modules)) manifest.modules[moduleName] = { type: 'text', contents: readFileSync(path, 'utf8') };
  const env = Object.fromEntries(Object.entries(vars).map(([k, value]) => [k, { type: 'text', value }]));
  if (d1) env.DB = { type: 'd1', id: `${name}-db` };
  for (const k of kv) env[k] = { type: 'kv', id: `${name}-${k}` };
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    // Workers still log (Gatehouse writes one line per request); the lines are just not printed here.
    handleStructuredLogs: () => {},
    workers: [{ config: { name, compatibilityDate: COMPAT_DATE, compatibilityFlags: flags, manifest, env } }],
  });
  cleanups.push(() => mf.dispose());
  const url = await mf.ready;
  return { mf, url: url.href.replace(/\/$/, '') };
}

/** Applies migrations/*.sql in order, statement by statement (they hold no triggers). */
async function migrate(mf) {
  const db = await mf.getD1Database('DB');
  for (const file of readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.sql')).sort()) {
    const sql = readFileSync(join(root, 'migrations', file), 'utf8').replace(/^\s*--.*$/gm, '');
    for (const statement of sql.split(/;\s*$/m).map((x) => x.trim()).filter(Boolean)) await db.prepare(statement).run();
  }
}

async function load(name, url, headers) {
  await autocannon({ url, connections: CONNECTIONS, duration: 2, headers }); // warm-up
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION, headers });
  if (r.non2xx || r.errors || r.timeouts) throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total };
}

async function timeRequest(url) {
  const t = performance.now();
  const r = await fetch(url);
  await r.text();
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return performance.now() - t;
}


try {
  log(`workerd via Miniflare, compatibility_date ${COMPAT_DATE}; ${CONNECTIONS} connections, ${DURATION}s x ${ROUNDS} rounds`);
  const size = bundleGatehouse();
  const minified = bundleGatehouse(['--minify'], 'gatehouse-min'); // reported only: what `minify = true` would upload
  const [baselineScript, microScript] = await Promise.all([bundle('hono-baseline.ts', 'hono-baseline'), bundle('verify-micro.ts', 'verify-micro')]);
  const origin = await startOrigin();

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const priv = await exportJWK(privateKey);
  const kid = `bench-${(await calculateJwkThumbprint(priv)).slice(0, 8)}`;
  const signingKeys = JSON.stringify({ keys: [{ ...priv, kid, alg: 'ES256', use: 'sig' }] });
  const { d: _d, ...pub } = priv;
  const publicJwks = JSON.stringify({ keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] });

  // Gatehouse as `wrangler deploy` would upload it, with local D1 and KV.
  const textModules = Object.fromEntries(size.files.filter((f) => f.endsWith('.txt')).map((f) => [f, join(size.dir, f)]));
  const gatehouse = await worker({
    name: 'gatehouse',
    main: join(size.dir, 'index.js'),
    modules: textModules,
    flags: ['nodejs_compat'],
    vars: {
      ENVIRONMENT: 'development',
      PUBLIC_URL: 'http://127.0.0.1',
      SIGNING_KEYS: signingKeys,
      ACCESS_TOKEN_TTL: '3600',
      ROUTES: JSON.stringify([
        { path: '/', origin, auth: 'required' },
        { path: '/open', origin, auth: 'public' },
      ]),
    },
    d1: true,
    kv: ['REVOKED'],
  });
  await migrate(gatehouse.mf);
  const passthrough = await worker({ name: 'passthrough', main: join(here, 'workers', 'passthrough.js'), vars: { ORIGIN: origin } });
  const baseline = await worker({ name: 'baseline', main: baselineScript, vars: { ORIGIN: origin, PUBLIC_JWKS: publicJwks, ISSUER: 'http://127.0.0.1' } });
  const micro = await worker({ name: 'micro', main: microScript, vars: { SIGNING_KEYS: signingKeys, PUBLIC_URL: 'http://127.0.0.1' }, kv: ['REVOKED'] });

  const reg = await fetch(`${gatehouse.url}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'a benchmark passphrase, long enough' }),
  });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
  const { access_token: token } = await reg.json();
  const auth = { authorization: `Bearer ${token}` };
  for (const [name, url, headers, want] of [
    ['gatehouse (no token)', gatehouse.url, {}, 401],
    ['gatehouse', gatehouse.url, auth, 200],
    ['hono baseline (no token)', baseline.url, {}, 401],
    ['hono baseline', baseline.url, auth, 200],
    ['pass-through', passthrough.url, {}, 200],
  ]) {
    const r = await fetch(`${url}/bench/item?x=1`, { headers });
    await r.text();
    if (r.status !== want) throw new Error(`${name}: expected ${want}, got ${r.status}`);
  }

  const runs = { a: [], b: [], c: [], p: [], kv: [], noop: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    runs.a.push(await load('a', `${passthrough.url}/bench/item?x=1`, {}));
    runs.b.push(await load('b', `${gatehouse.url}/bench/item?x=1`, auth));
    runs.c.push(await load('c', `${baseline.url}/bench/item?x=1`, auth));
    runs.p.push(await load('p', `${gatehouse.url}/open/item?x=1`, {}));
    // The local KV simulator alone, under the same load: one Worker doing only the revocation get.
    runs.kv.push(await load('kv', `${micro.url}/?mode=kv&n=1&token=x`, {}));
    runs.noop.push(await load('noop', `${micro.url}/?mode=none&n=1&token=x`, {}));
    log(`round ${round}: a ${runs.a.at(-1).rps.toFixed(0)} req/s, b ${runs.b.at(-1).rps.toFixed(0)} req/s, c ${runs.c.at(-1).rps.toFixed(0)} req/s`);
  }
  const best = (xs) => xs.reduce((m, x) => (x.rps > m.rps ? x : m));
  const a = best(runs.a);
  const b = best(runs.b);
  const c = best(runs.c);
  const p = best(runs.p);
  const kvOnly = best(runs.kv);
  const noop = best(runs.noop);
  // Machine time per request that the KV simulator adds under load, and (b) without it.
  const kvMs = 1000 / kvOnly.rps - 1000 / noop.rps;
  const bWithoutKv = 1000 / (1000 / b.rps - kvMs);

  // Verify step: N verifications per request, request overhead (mode=none) subtracted.
  const N = Number(process.env.BENCH_VERIFY_N ?? 5000);
  const KV_N = 200;
  const q = (mode) => `${micro.url}/?mode=${mode}&n=${mode === 'kv' ? KV_N : N}&token=${token}`;
  const modes = ['none', 'bare', 'gatehouse', 'gatehouse-cached', 'kv'];
  for (const mode of modes) await timeRequest(q(mode)); // warm-up
  const samples = Object.fromEntries(modes.map((m) => [m, []]));
  // Interleaved samples; the fastest of each is the least disturbed by the rest of the machine.
  for (let i = 0; i < 11; i++) for (const mode of modes) samples[mode].push(await timeRequest(q(mode)));
  const fastest = (xs) => Math.min(...xs);
  const perOp = (mode) => ((fastest(samples[mode]) - fastest(samples.none)) / (mode === 'kv' ? KV_N : N)) * 1000; // microseconds

  const rows = [
    ['(a) pass-through, no auth', a],
    ['(b) Gatehouse, required route', b],
    ['(c) hono jwk() + hono/proxy', c],
    ['(info) Gatehouse, public route', p],
    ['(info) Worker: KV get only', kvOnly],
    ['(info) Worker: empty response', noop],
  ];
  console.log('\nscenario                          req/s     p50 ms   p99 ms');
  for (const [name, r] of rows) console.log(`${name.padEnd(32)} ${r.rps.toFixed(0).padStart(7)}   ${String(r.p50).padStart(6)}   ${String(r.p99).padStart(6)}`);
  const bare = perOp('bare');
  const ours = perOp('gatehouse');
  console.log(`\nratio b/a (throughput): ${(b.rps / a.rps).toFixed(2)}   target >= 0.85`);
  console.log(`ratio b/c (throughput): ${(b.rps / c.rps).toFixed(2)}   target >= 1.00`);
  console.log(`verify step: ${ours.toFixed(1)} us vs bare crypto.subtle.verify ${bare.toFixed(1)} us = ${(ours / bare).toFixed(2)}x   target <= 1.3x`);
  console.log(`verify step, token already verified by this isolate (cache hit, expiry re-checked): ${perOp('gatehouse-cached').toFixed(1)} us = ${(perOp('gatehouse-cached') / bare).toFixed(2)}x bare`);
  console.log(`revocation lookup (local KV simulation, one multi-key get): ${perOp('kv').toFixed(0)} us sequential, ${(kvMs * 1000).toFixed(0)} us of machine time per request under load`);
  console.log(`estimate, (b) with the KV simulator's machine time taken out: ${bWithoutKv.toFixed(0)} req/s: b/a ${(bWithoutKv / a.rps).toFixed(2)}, b/c ${(bWithoutKv / c.rps).toFixed(2)}`);
  console.log(`bundle with --minify: ${(minified.gzipBytes / 1024).toFixed(1)} KiB gzip -9; wrangler reports ${minified.reportedGzipKiB} KiB gzip`);
  console.log(
    `bundle (wrangler deploy --dry-run): ${(size.rawBytes / 1024).toFixed(1)} KiB raw, ${(size.gzipBytes / 1024).toFixed(1)} KiB gzip -9 (${size.files.join(', ')}); wrangler reports ${size.reportedGzipKiB} KiB gzip   target <= 64 KiB`,
  );
} finally {
  await cleanup();
}
