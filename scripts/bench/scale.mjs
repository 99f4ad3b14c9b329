#!/usr/bin/env node
// `npm run bench:scale`: many users refreshing at once, with sessions as rows in one D1 database
// (the design before per-user objects; scripts/bench/workers/d1-sessions-baseline.ts) and with
// Gatehouse's real `POST /auth/refresh` on one Durable Object per user. See BENCHMARKS.md.
//
// Method (as scripts/bench/run.mjs): wrangler's own Miniflare and workerd, one workerd process
// per design, no `wrangler dev` proxy; Gatehouse built by scripts/build.mjs (the modules wrangler
// uploads) and configured as it deploys (ENVIRONMENT=production, real ES256 SIGNING_KEYS,
// PUBLIC_URL the https origin it is served as, RATE_LIMITER, local D1 migrated, local KV,
// USER_SESSIONS SQLite-backed). The load generator (scale-load.mjs) runs in its own process;
// workerd's CPU time (utime + stime of the process, all threads: the Worker, its Durable
// Objects and the local D1 simulator) is read from /proc around the measured run.
//
// Seeding is the harness's, not the product's: BENCH_SCALE_USERS users are inserted into D1
// directly (no password: nothing here signs in), and BENCH_SCALE_SESSIONS sessions spread over
// them are created directly: rows in the baseline's D1 tables; for Gatehouse, through the
// object's own RPC method `create` (workers/scale-seed.js), the call the sign-in pipeline makes.
// A real sign-in per session would cost a scrypt hash each (minutes for ten thousand).
//
// Bounded: loopback only; a fixed number of refreshes (every session BENCH_SCALE_ROUNDS times,
// default 1, after BENCH_SCALE_WARMUP warm-up refreshes) with BENCH_SCALE_CONCURRENCY in flight
// (default 32), each design stopped at BENCH_SCALE_CAP seconds (default 60) whatever is left;
// then, outside the measured window, BENCH_SCALE_PAIRS sessions (default 100) are each refreshed
// twice at once with one token (two tabs): one 200 and one 409 `conflict` each is the promise.
import childProcess, { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningJwk } from '../../src/keys/generate-jwk.ts';
import { buildWorker } from '../build.mjs';
import { bundleWorker, CLK_TCK, cpuMs, freePort } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const USERS = Number(process.env.BENCH_SCALE_USERS ?? 1000);
const SESSIONS = Number(process.env.BENCH_SCALE_SESSIONS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 1);
const WARMUP = Number(process.env.BENCH_SCALE_WARMUP ?? 200);
const CONCURRENCY = Number(process.env.BENCH_SCALE_CONCURRENCY ?? 32);
const CAP_S = Number(process.env.BENCH_SCALE_CAP ?? 60);
const PAIRS = Number(process.env.BENCH_SCALE_PAIRS ?? 100); // two-tab pairs after the measured run
const ONLY = process.env.BENCH_SCALE_ONLY; // "d1" or "objects": one design (debugging)
// Opt-in (a minute more): also Gatehouse itself as of this commit, built from git, whose sessions
// were rows in D1 (e.g. be8e3c8, the last before per-user objects): the whole app, same route.
const BEFORE = process.env.BENCH_SCALE_BEFORE;
const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
const COMPAT_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(toml)[1];
const work = mkdtempSync(join(tmpdir(), 'gatehouse-scale-'));
const cleanups = [];
const log = (...a) => console.log('[bench:scale]', ...a);
const started = Date.now();

const wranglerRequire = createRequire(join(root, 'node_modules', 'wrangler', 'package.json'));
// Miniflare spawns workerd through node:child_process's spawn: this records each one's pid.
const workerdChildren = [];
const realSpawn = childProcess.spawn;
childProcess.spawn = function spawnAndRecord(command, ...rest) {
  const child = realSpawn.call(this, command, ...rest);
  if (/workerd/.test(String(command))) workerdChildren.push({ child, command: String(command) });
  return child;
};
const { Miniflare } = wranglerRequire('miniflare');

/** CPU time (user + system, all threads) the process has used so far, in ms. */
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (text) => b64url(createHash('sha256').update(text).digest());
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/**
 * Gatehouse's modules, as scripts/build.mjs builds them for wrangler to upload (index.js first);
 * with `commit`, those of that commit: its src/ and build script from git, this checkout's
 * node_modules (the dependencies have not changed since).
 */
async function gatehouseModules(commit) {
  let builder = buildWorker;
  if (commit) {
    // Resolved without a shell first: only a full hash reaches the shell line below.
    const hash = execFileSync('git', ['rev-parse', '--verify', `${commit}^{commit}`], { cwd: root, encoding: 'utf8' }).trim();
    if (!/^[0-9a-f]{40}$/.test(hash)) throw new Error(`not a commit: ${commit}`);
    const dir = join(work, `src-${hash}`);
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${hash} src scripts/build.mjs package.json | tar -x -C '${dir}'`], { cwd: root });
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    ({ buildWorker: builder } = await import(join(dir, 'scripts', 'build.mjs')));
  }
  const { files } = await builder();
  const types = { '.js': 'esm', '.txt': 'text' };
  return files
    .filter((f) => types[/\.[a-z]+$/.exec(f.name)?.[0]])
    .sort((a, b) => (a.name === 'index.js' ? -1 : b.name === 'index.js' ? 1 : 0))
    .map((f) => ({ name: f.name, type: types[/\.[a-z]+$/.exec(f.name)[0]], contents: Buffer.from(f.contents).toString('utf8') }));
}

/**
 * Miniflare 5's description of one Worker (as run.mjs's workerConfig): `modules` [{ name, type,
 * contents }], the first is the entry; `env` in Miniflare's binding form; `exports` the Durable
 * Object classes this Worker's main module exports (SQLite-backed, as new_sqlite_classes).
 */
function workerConfig({ name, modules, flags = [], env = {}, exports }) {
  return {
    config: {
      name,
      compatibilityDate: COMPAT_DATE,
      compatibilityFlags: flags,
      manifest: { mainModule: modules[0].name, modulesRoot: work, modules: Object.fromEntries(modules.map((m) => [m.name, { type: m.type, contents: m.contents }])) },
      env,
      ...(exports ? { exports } : {}),
    },
  };
}
const text = (value) => ({ type: 'text', value });

const bundle = (entry, name) => bundleWorker(entry, name, work);

// A rate limiter as wrangler.toml configures it, but with a limit no bench run reaches: every
// simulated user here shares the loopback address, where in production each has their own.
const RATE_LIMITER = { type: 'rate-limit', namespace: '1001', simple: { limit: 1_000_000_000, period: 60 } };

/** One Miniflare (one workerd process) for one design; returns its pid and URLs. */
async function start(port, workers) {
  const before = workerdChildren.length;
  const mf = new Miniflare({ host: '127.0.0.1', port, upstream: `https://127.0.0.1:${port}`, logRequests: false, handleStructuredLogs: () => {}, workers: workers.map(workerConfig) });
  cleanups.push(() => mf.dispose());
  await mf.ready;
  const spawned = workerdChildren.slice(before);
  if (spawned.length !== 1) throw new Error(`expected one workerd process, saw ${spawned.length}`);
  if (!process.env.BENCH_VERBOSE) {
    for (const s of [spawned[0].child.stdout, spawned[0].child.stderr]) {
      s.unpipe();
      s.resume();
    }
  }
  return { mf, pid: spawned[0].child.pid, url: `http://127.0.0.1:${port}`, publicUrl: `https://127.0.0.1:${port}` };
}

/** Applies migrations/*.sql in order, statement by statement. */
async function migrate(db) {
  for (const file of readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.sql')).sort()) {
    const sql = readFileSync(join(root, 'migrations', file), 'utf8').replace(/^\s*--.*$/gm, '');
    for (const statement of sql.split(/;\s*$/m).map((x) => x.trim()).filter(Boolean)) await db.prepare(statement).run();
  }
}

/** The same simulated population for both designs: users, and sessions dealt round-robin over them. */
function population() {
  const now = Math.floor(Date.now() / 1000);
  const users = Array.from({ length: USERS }, (_, i) => ({ id: `usr_${b64url(randomBytes(12))}`, email: `scale-${i}@example.com` }));
  const sessions = Array.from({ length: SESSIONS }, (_, i) => {
    const user = users[i % USERS];
    const secret = b64url(randomBytes(32));
    return {
      user: user.id,
      secret,
      row: {
        id: `ses_${b64url(randomBytes(12))}`,
        user_id: user.id,
        refresh_hash: sha256(secret),
        family: b64url(randomBytes(12)),
        created_at: now,
        expires_at: now + 30 * 86_400,
        last_used_at: now,
        revoked_at: null,
        user_agent: 'bench',
        ip: null,
        provider: null,
        amr: '["pwd"]',
        auth_time: now,
      },
    };
  });
  return { users, sessions, now };
}

async function seedUsers(db, users, now) {
  for (let i = 0; i < users.length; i += 500) {
    await db.batch(
      users.slice(i, i + 500).map((u) =>
        db.prepare("INSERT INTO users (id, email, email_verified, roles, created_at, updated_at) VALUES (?, ?, 1, '[]', ?, ?)").bind(u.id, u.email, now, now),
      ),
    );
  }
}

const SESSION_COLUMNS = ['id', 'user_id', 'refresh_hash', 'family', 'created_at', 'expires_at', 'last_used_at', 'revoked_at', 'user_agent', 'ip', 'provider', 'amr', 'auth_time'];

/** Migrates the database, then users and their sessions as rows (the design before per-user objects). */
async function seedD1(db, pop) {
  await migrate(db);
  await seedUsers(db, pop.users, pop.now);
  const insert = `INSERT INTO sessions (${SESSION_COLUMNS.join(', ')}) VALUES (${SESSION_COLUMNS.map(() => '?').join(', ')})`;
  for (let i = 0; i < pop.sessions.length; i += 1000) {
    await db.batch(pop.sessions.slice(i, i + 1000).map((s) => db.prepare(insert).bind(...SESSION_COLUMNS.map((c) => s.row[c]))));
  }
}

/** One measured run in its own load-generator process; workerd CPU sampled around it. */
function load(target, sessions, headers) {
  const jobFile = join(work, `job-${Date.now()}.json`);
  writeFileSync(jobFile, JSON.stringify({ url: `${target.url}/auth/refresh`, headers, sessions, concurrency: CONCURRENCY, rounds: ROUNDS, warmup: WARMUP, capSeconds: CAP_S, pairs: PAIRS }));
  const child = spawn(process.execPath, [join(here, 'scale-load.mjs'), jobFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(async () => child.kill('SIGTERM'));
  return new Promise((resolve, reject) => {
    let buffered = '';
    let cpuStart = 0;
    let cpu = NaN;
    child.stdout.on('data', (d) => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (msg.event === 'start') cpuStart = cpuMs(target.pid);
        if (msg.event === 'end') cpu = cpuMs(target.pid) - cpuStart;
        if (msg.event === 'done') resolve({ ...msg, cpuMsPerReq: msg.responses ? cpu / msg.responses : NaN, loadAfter: loadavg()[0] });
      }
    });
    child.once('exit', (code) => code !== 0 && reject(new Error(`scale-load.mjs exited ${code}`)));
  });
}

async function runD1(signingKeys, pop) {
  const script = await bundle('d1-sessions-baseline.ts', 'd1-sessions-baseline');
  const port = await freePort();
  const w = await start(port, [
    {
      name: 'd1baseline',
      flags: ['nodejs_compat'],
      modules: [{ name: 'd1-sessions-baseline.js', type: 'esm', contents: readFileSync(script, 'utf8') }],
      env: { SIGNING_KEYS: text(signingKeys), PUBLIC_URL: text(`https://127.0.0.1:${port}`), DB: { type: 'd1', id: 'd1baseline-db' }, RATE_LIMITER },
    },
  ]);
  const db = await w.mf.getD1Database('DB', 'd1baseline');
  await seedD1(db, pop);
  const n = await db.prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT user_id) AS u FROM sessions').first();
  log(`D1 baseline: seeded ${n.n} session rows of ${n.u} users in its one D1 database; measuring`);
  const result = await load(w, pop.sessions.map((s) => ({ user: s.user, token: s.secret })), {});
  const rows = await db.prepare('SELECT (SELECT COUNT(*) FROM rotated_refresh_tokens) AS rotated, (SELECT COUNT(*) FROM auth_events WHERE event = ?) AS audited').bind('refresh').first();
  await w.mf.dispose();
  cleanups.pop();
  return { ...result, stores: '1 D1 database', check: `${rows.rotated} rotated-token rows, ${rows.audited} refresh audit rows` };
}

/**
 * Gatehouse as it deploys (production, real keys, PUBLIC_URL the https origin it is served as),
 * with its per-user Durable Object class bound under `binding`: the old fence or today's
 * sessions object. Storage ids are prefixed, so two builds never share a database.
 */
function gatehouseWorker({ modules, publicUrl, signingKeys, ids, binding, className }) {
  return {
    name: 'gatehouse',
    flags: ['nodejs_compat'],
    modules,
    env: {
      ENVIRONMENT: text('production'),
      PUBLIC_URL: text(publicUrl),
      SIGNING_KEYS: text(signingKeys),
      ACCESS_TOKEN_TTL: text('600'),
      DB: { type: 'd1', id: `${ids}-db` },
      REVOKED: { type: 'kv', id: `${ids}-REVOKED` },
      RATE_LIMITER,
      [binding]: { type: 'durable-object', worker: 'gatehouse', exportName: className },
    },
    exports: { [className]: { type: 'durable-object', storage: 'sqlite' } },
  };
}

/** Gatehouse at `commit` (sessions as D1 rows, its optional fence bound as its wrangler.toml did). */
async function runBefore(commit, signingKeys, pop) {
  const modules = await gatehouseModules(commit);
  const port = await freePort();
  const publicUrl = `https://127.0.0.1:${port}`;
  const w = await start(port, [gatehouseWorker({ modules, publicUrl, signingKeys, ids: 'before', binding: 'REVOCATION_FENCE', className: 'RevocationFence' })]);
  const db = await w.mf.getD1Database('DB', 'gatehouse');
  await seedD1(db, pop);
  log(`Gatehouse at ${commit}: seeded ${pop.sessions.length} session rows in D1; measuring`);
  const result = await load(w, pop.sessions.map((s) => ({ user: s.user, token: s.secret })), { origin: publicUrl });
  const rows = await db.prepare('SELECT (SELECT COUNT(*) FROM rotated_refresh_tokens) AS rotated, (SELECT COUNT(*) FROM auth_events WHERE event = ?) AS audited').bind('refresh').first();
  await w.mf.dispose();
  cleanups.pop();
  return { ...result, stores: '1 D1 database (+ the fence, 1 object per user)', check: `${rows.rotated} rotated-token rows, ${rows.audited} refresh audit rows` };
}

async function runObjects(signingKeys, pop) {
  const modules = await gatehouseModules();
  const seeder = join(here, 'workers', 'scale-seed.js');
  const port = await freePort();
  const publicUrl = `https://127.0.0.1:${port}`;
  const w = await start(port, [
    gatehouseWorker({ modules, publicUrl, signingKeys, ids: 'gatehouse', binding: 'USER_SESSIONS', className: 'UserSessions' }),
    {
      name: 'seeder',
      modules: [{ name: 'scale-seed.js', type: 'esm', contents: readFileSync(seeder, 'utf8') }],
      env: { USER_SESSIONS: { type: 'durable-object', worker: 'gatehouse', exportName: 'UserSessions' } },
    },
  ]);
  const db = await w.mf.getD1Database('DB', 'gatehouse');
  await migrate(db);
  await seedUsers(db, pop.users, pop.now);
  const seed = await w.mf.getWorker('seeder');
  let created = 0;
  for (let i = 0; i < pop.sessions.length; i += 500) {
    const r = await seed.fetch('http://seed/', { method: 'POST', body: JSON.stringify(pop.sessions.slice(i, i + 500).map((s) => ({ userId: s.user, row: s.row }))) });
    if (r.status !== 200) throw new Error(`seeding: ${r.status} ${(await r.text()).slice(0, 300)}`);
    created += Number(await r.text());
  }
  log(`Gatehouse: created ${created} sessions in the objects of ${new Set(pop.sessions.map((s) => s.user)).size} users; measuring`);
  const result = await load(w, pop.sessions.map((s) => ({ user: s.user, token: `${s.user}.${s.secret}` })), { origin: publicUrl });
  const audited = await db.prepare('SELECT COUNT(*) AS n FROM auth_events WHERE event = ?').bind('refresh').first();
  const d1Sessions = await db.prepare('SELECT COUNT(*) AS n FROM sessions').first();
  await w.mf.dispose();
  cleanups.pop();
  return { ...result, stores: `${result.usersServed} Durable Objects (one per user)`, check: `${audited.n} refresh audit rows in D1, ${d1Sessions.n} session rows in D1` };
}

try {
  const wranglerVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'wrangler', 'package.json'), 'utf8')).version;
  log(`wrangler ${wranglerVersion}'s miniflare; ${USERS} users, ${SESSIONS} sessions, ${ROUNDS} refresh(es) per session after ${WARMUP} warm-up, ${CONCURRENCY} in flight, cap ${CAP_S} s per design`);
  const jwk = await generateSigningJwk('ES256');
  const signingKeys = JSON.stringify({ keys: [jwk] });
  const loadBefore = loadavg();
  const results = [];
  // The same users and sessions (fresh secrets) for both designs.
  if (ONLY !== 'objects') results.push(['sessions as rows in one D1 database (baseline)', await runD1(signingKeys, population())]);
  if (BEFORE) results.push([`Gatehouse at ${BEFORE} \`POST /auth/refresh\`, sessions as D1 rows`, await runBefore(BEFORE, signingKeys, population())]);
  if (ONLY !== 'd1') results.push(['Gatehouse `POST /auth/refresh`, one Durable Object per user', await runObjects(signingKeys, population())]);
  const workerdBin = workerdChildren[0]?.command;
  const workerdVersion = workerdBin ? execFileSync(workerdBin, ['--version'], { encoding: 'utf8' }).trim() : 'n/a';

  console.log(`\n${new Date().toISOString()} (${((Date.now() - started) / 1000).toFixed(0)} s); ${workerdVersion}; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before`);
  console.log(`${SESSIONS} sessions of ${USERS} users; ${ROUNDS} refresh(es) per session, ${CONCURRENCY} in flight, cap ${CAP_S} s\n`);
  console.log('| design | refreshes | refreshes/s | p50 ms | p99 ms | workerd CPU ms/refresh | errors (non-200) | of which conflicts | stores carrying the load | 1-min load after |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const [label, r] of results) {
    console.log(`| ${label} | ${r.ok}/${r.planned}${r.capped ? ' (capped)' : ''} | ${fmt(r.rps, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.cpuMsPerReq, 2)} | ${r.errors} | ${r.conflicts} | ${r.stores} | ${fmt(r.loadAfter, 2)} |`);
  }
  for (const [label, r] of results) {
    console.log(`${label}: two tabs, ${r.pairs.sent} sessions each refreshed twice at once with one token: ${r.pairs.oneWinner} with exactly one 200 and one 409 conflict, ${r.pairs.twoWinners} with two 200s, ${r.pairs.other} otherwise`);
    console.log(`${label}: ${r.check}; outcomes ${JSON.stringify(r.kinds)}${Object.keys(r.samples).length ? `; first bodies: ${JSON.stringify(r.samples)}` : ''}`);
  }
  const obj = results.at(-1)[1];
  if (ONLY !== 'd1' && results.length >= 2) {
    for (const [label, r] of results.slice(0, -1)) {
      console.log(`per-user objects / ${label}: throughput ${fmt(obj.rps / r.rps, 2)}x, workerd CPU per refresh ${fmt(obj.cpuMsPerReq / r.cpuMsPerReq, 2)}x`);
    }
  }
} finally {
  for (const f of cleanups.reverse()) await f().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
