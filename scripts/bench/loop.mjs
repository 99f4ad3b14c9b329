#!/usr/bin/env node
// The whole revocation loop as a figure: a sign-in provider tells Gatehouse that a user's session
// there ended (OpenID Connect Back-Channel Logout), and this measures, from the moment the
// provider's POST is answered, (1) the first refusal at a `revocation = "immediate"` route in
// ANOTHER isolate than the one that took the POST, (2) the first refusal at a cached route in
// that other isolate, and (3) the arrival of the signed logout notice at the route's
// `logout_notify` origin. See BENCHMARKS.md ("The whole loop").
//
//   node scripts/bench/loop.mjs     this measurement alone (builds the Worker itself; about 20 s)
//   npm run bench                   the same, as rows of the full bench (run.mjs calls measureLoop)
//
// Set-up, all on loopback:
// - The provider is the dev OpenID Connect server (scripts/dev/oidc-server.mjs, oauth2-mock-server),
//   which signs the user in and signs the logout token with its own key, as the e2e test
//   test/e2e/provider-back-channel-logout.test.ts does.
// - Gatehouse runs as it deploys (ENVIRONMENT=production, the modules wrangler uploads), so its
//   provider and its notice target must be https: both are named by https origins, and every
//   outbound fetch of the Workers passes through workers/loop-net.js, which sends those two
//   origins to the loopback servers standing for them (TLS ends in front of them, as it would).
// - Two Gatehouse Workers in one Miniflare, as revocation.mjs's measureFencedOtherIsolate: A takes
//   the provider's POST (and holds the sessions objects' class, the queue's consumer), B is
//   another isolate of the same deployment (own module state, so its own revocation cache),
//   D1 and KV shared by id, B's USER_SESSIONS bound to A's class. The LOGOUT_NOTICES queue and
//   its consumer are configured as wrangler.toml's (batch window included).
// - Each repetition: a new provider user and provider session (`sid`), signed in through the
//   provider (cookie mode), three requests on each of B's routes (B's cache now says
//   "not revoked"; the origin learns the Gatehouse session id from the assertion), the provider
//   posts the logout token to A: t0 when that POST is answered. Then B's two routes are polled
//   every POLL_MS (revocation.mjs) and the origin records the notice for that session id (verified
//   with `gatehouse/verify`'s verifyGatehouseLogoutToken) when it arrives. Each wait is bounded by
//   REVOCATION_BOUND_S and reported as a failure past it, never a hang.
// - Repetitions overlap: the next starts once the immediate refusal and the notice are in, while
//   the cached route of the earlier ones is still being polled (W = 10 s each; one after the
//   other, five would take a minute). At most a few sessions are polled at once, 20 requests/s each.
//
// Another trigger (SCIM `active: false`, a CAEP event) plugs in as an entry of TRIGGERS: it sets
// up what it needs for a signed-in user and ends that user's access; the rest is unchanged.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { verifyGatehouseLogoutToken } from '../../packages/verify/src/index.ts';
import { startDevOidcServer } from '../dev/oidc-server.mjs';
import { applyMigrations, freePort } from './common.mjs';
import { POLL_MS, pollUntilRefused, REVOCATION_BOUND_S } from './revocation.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
export const LOOP_REPS = Number(process.env.BENCH_LOOP_REPS ?? 5);
/** REVOCATION_CACHE_SECONDS, set explicitly to its default (src/config/schema.ts). */
export const LOOP_WINDOW_S = 10;
const WARM_REQUESTS = 3;
const PROVIDER_ORIGIN = 'https://idp.loop.test';
const NOTICE_ORIGIN = 'https://app.loop.test';
const NOTICE_PATH = '/backchannel-logout';
const CLIENT_ID = 'gatehouse-loop-bench';
const QUEUE = 'gatehouse-logout-notices';
const JSON_ACCEPT = { accept: 'application/json' };

const firstLine = (e) => String(e?.message ?? e).split('\n')[0];

/** wrangler.toml's settings the loop's Workers copy: compatibility date, rate limit, queue consumers. */
function fromWranglerToml() {
  const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  const compatibilityDate = /compatibility_date\s*=\s*"([^"]+)"/.exec(toml)[1];
  const [, limit, period] = /simple\s*=\s*\{\s*limit\s*=\s*(\d+)\s*,\s*period\s*=\s*(\d+)/.exec(toml);
  const number = (block, key) => {
    const m = new RegExp(`^${key}\\s*=\\s*(\\d+)`, 'm').exec(block);
    return m ? Number(m[1]) : undefined;
  };
  const consumers = toml
    .split('[[queues.consumers]]')
    .slice(1)
    .map((block) => block.split(/^\[/m)[0])
    .map((block) => ({
      type: 'queue',
      name: /^queue\s*=\s*"([^"]+)"/m.exec(block)[1],
      maxBatchSize: number(block, 'max_batch_size'),
      maxBatchTimeout: number(block, 'max_batch_timeout'),
      maxRetries: number(block, 'max_retries'),
      deadLetterQueue: /^dead_letter_queue\s*=\s*"([^"]+)"/m.exec(block)?.[1],
    }));
  return { compatibilityDate, rateLimit: { limit: Number(limit), period: Number(period) }, consumers };
}

/** A minimal cookie jar: the browser's part of a cookie-mode sign-in. */
class Jar {
  cookies = new Map();
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (value === '' || attrs.some((a) => /max-age=0\b/i.test(a.trim()))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/**
 * The origin behind both routes, also the `logout_notify` target: answers "origin ok", keeps the
 * Gatehouse session id of the last assertion it received, and records when each notice arrives
 * (its `performance.now()` on the request's arrival, the bench's clock), verified afterwards.
 */
async function startOrigin({ jwksUrl, issuer }) {
  const waiting = new Map(); // Gatehouse session id -> resolve
  const arrived = new Map(); // Gatehouse session id -> { at }
  const refused = []; // why notices failed verification
  let lastSid = null;
  const server = createServer((req, res) => {
    const at = performance.now();
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.method === 'POST' && req.url === NOTICE_PATH) {
        let notice;
        try {
          const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') ?? '';
          const logout = await verifyGatehouseLogoutToken(token, { jwksUrl, issuer, audience: `${NOTICE_ORIGIN}${NOTICE_PATH}` });
          notice = { sid: logout.sessionId, at };
          res.writeHead(200).end();
        } catch (e) {
          refused.push(firstLine(e));
          res.writeHead(400).end();
          return;
        }
        // At least once: a second notice for a session changes nothing.
        if (!arrived.has(notice.sid)) {
          arrived.set(notice.sid, notice);
          waiting.get(notice.sid)?.(notice);
        }
        return;
      }
      const assertion = String(req.headers['x-auth-assertion'] ?? '');
      if (assertion) lastSid = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString()).sid ?? null;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('origin ok');
    });
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    lastSid: () => lastSid,
    /** Resolves to the notice's arrival time for `sid`, or { error } past the bound. */
    notice(sid, since) {
      if (arrived.has(sid)) return Promise.resolve(arrived.get(sid));
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(sid);
          resolve({ error: `no notice within ${REVOCATION_BOUND_S} s${refused.length ? ` (refused: ${refused.at(-1)})` : ''}` });
        }, Math.max(0, since + REVOCATION_BOUND_S * 1000 - performance.now()));
        waiting.set(sid, (n) => {
          clearTimeout(timer);
          waiting.delete(sid);
          resolve(n);
        });
      });
    },
    stop: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * What ends a signed-in user's access at the provider's side. `fire(ctx, user)` resolves to t0,
 * the moment the provider's request was answered. `label` names it in the rows.
 */
export const TRIGGERS = {
  backchannel: {
    label: 'provider back-channel logout',
    async fire({ idp, a }, user) {
      const token = await idp.server.issuer.buildToken({
        expiresIn: 120,
        scopesOrTransform: (header, payload) => {
          header.typ = 'logout+jwt';
          Object.assign(payload, { aud: CLIENT_ID, sub: user.sub, sid: user.sid, jti: randomUUID(), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
        },
      });
      const r = await fetch(`${a.url}/auth/backchannel-logout/oidc`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }),
      });
      const body = await r.text();
      const t0 = performance.now();
      if (r.status !== 200) throw new Error(`back-channel logout: ${r.status} ${body.slice(0, 200)}`);
      return t0;
    },
  },
};

/** Login -> the provider's authorize (it signs `user` in at once) -> the callback: a cookie session. */
async function signIn({ a, idpLocal }) {
  const jar = new Jar();
  const login = await fetch(`${a.url}/auth/login/oidc`, { redirect: 'manual' });
  jar.take(login);
  await login.text();
  if (login.status !== 302) throw new Error(`login: ${login.status}`);
  const authorize = new URL(login.headers.get('location'));
  if (authorize.origin !== PROVIDER_ORIGIN) throw new Error(`login sent the browser to ${authorize.origin}, not the provider`);
  const atProvider = await fetch(`${idpLocal}${authorize.pathname}${authorize.search}`, { redirect: 'manual' });
  await atProvider.text();
  const back = new URL(atProvider.headers.get('location') ?? '');
  const done = await fetch(`${a.url}${back.pathname}${back.search}`, { redirect: 'manual', headers: { cookie: jar.header() } });
  jar.take(done);
  const body = await done.text();
  if (done.status !== 303) throw new Error(`callback: ${done.status} ${body.slice(0, 200)}`);
  return { cookie: jar.header() };
}

/** Median and max of the figures that were measured, with how many failed. */
function summary(results) {
  const ok = results.filter((r) => r && !r.error);
  const ms = ok.map((r) => r.ms).sort((x, y) => x - y);
  const mid = ms.length ? (ms.length % 2 ? ms[(ms.length - 1) / 2] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2) : NaN;
  return { n: results.length, measured: ok.length, median: mid, max: ms.length ? ms.at(-1) : NaN, maxPolls: Math.max(0, ...ok.map((r) => r.polls ?? 0)), errors: results.filter((r) => r?.error).map((r) => r.error) };
}

/**
 * Runs the loop LOOP_REPS times. `Miniflare` is wrangler's own; `modules` Gatehouse's
 * [{ name, type, contents }] as wrangler uploads them (index.js first); `signingKeys` its
 * SIGNING_KEYS. Resolves to { trigger, reps: [{ immediate, cached, notice }], immediate, cached,
 * notice } (the last three: summary()), or { error } when the set-up itself failed.
 */
export async function measureLoop({ Miniflare, modules, signingKeys, trigger = 'backchannel', log = () => {} }) {
  const how = TRIGGERS[trigger];
  if (!how) return { error: `no trigger "${trigger}" (known: ${Object.keys(TRIGGERS).join(', ')})` };
  const { compatibilityDate, rateLimit, consumers } = fromWranglerToml();
  const stops = [];
  try {
    let who = null;
    const idp = await startDevOidcServer({ port: 0, claims: () => who });
    stops.push(() => idp.stop());
    const idpLocal = idp.issuer; // where it listens; it names itself by its https origin below
    idp.server.issuer.url = PROVIDER_ORIGIN;

    const port = await freePort();
    const publicUrl = `https://127.0.0.1:${port}`;
    const origin = await startOrigin({ jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, issuer: publicUrl });
    stops.push(() => origin.stop());

    const routes = [
      { path: '/now', origin: origin.url, auth: 'required', revocation: 'immediate' },
      { path: '/app', origin: origin.url, auth: 'required', logout_notify: `${NOTICE_ORIGIN}${NOTICE_PATH}` },
    ];
    const text = (value) => ({ type: 'text', value });
    const env = {
      ENVIRONMENT: text('production'),
      PUBLIC_URL: text(publicUrl),
      SIGNING_KEYS: text(signingKeys),
      REVOCATION_CACHE_SECONDS: text(String(LOOP_WINDOW_S)),
      OIDC_ISSUER: text(PROVIDER_ORIGIN),
      OIDC_CLIENT_ID: text(CLIENT_ID),
      OIDC_CLIENT_SECRET: text('loop-bench-secret'),
      ROUTES: text(JSON.stringify(routes)),
      DB: { type: 'd1', id: 'loop-db' },
      REVOKED: { type: 'kv', id: 'loop-revoked' },
      RATE_LIMITER: { type: 'rate-limit', namespace: '1001', simple: rateLimit },
      USER_SESSIONS: { type: 'durable-object', worker: 'gatehouse', exportName: 'UserSessions' },
      LOGOUT_NOTICES: { type: 'queue', name: QUEUE },
    };
    const manifest = (mods) => ({ mainModule: mods[0].name, modulesRoot: root, modules: Object.fromEntries(mods.map((m) => [m.name, { type: m.type, contents: m.contents }])) });
    const viaLoopNet = { outboundService: { type: 'worker', worker: 'loop-net' } };
    const gatehouse = (name, own) => ({
      config: {
        name,
        compatibilityDate,
        compatibilityFlags: ['nodejs_compat'],
        manifest: manifest(modules),
        env,
        // A exports the sessions objects (SQLite-backed, as new_sqlite_classes) and consumes the queue.
        ...(own ? { exports: { UserSessions: { type: 'durable-object', storage: 'sqlite' } }, triggers: consumers } : {}),
      },
      dev: viaLoopNet,
    });
    const mf = new Miniflare({
      host: '127.0.0.1',
      port,
      upstream: publicUrl,
      logRequests: false,
      handleStructuredLogs: () => {},
      workers: [
        gatehouse('gatehouse', true),
        gatehouse('gatehouse-b', false),
        {
          config: {
            name: 'loop-net',
            compatibilityDate,
            manifest: manifest([{ name: 'loop-net.js', type: 'esm', contents: readFileSync(join(here, 'workers', 'loop-net.js'), 'utf8') }]),
            env: { HOSTS: text(JSON.stringify({ [PROVIDER_ORIGIN]: idpLocal, [NOTICE_ORIGIN]: origin.url })) },
          },
        },
      ],
    });
    stops.push(() => mf.dispose());
    await mf.ready;
    await applyMigrations(await mf.getD1Database('DB', 'gatehouse'));
    const b = await mf.getWorker('gatehouse-b');
    const fetchB = (url, init) => b.fetch(url, init);
    const a = { url: `http://127.0.0.1:${port}`, publicUrl };

    const stamp = Date.now();
    const reps = [];
    const pending = [];
    for (let i = 0; i < LOOP_REPS; i++) {
      const rep = { immediate: null, cached: null, notice: null };
      reps.push(rep);
      try {
        const user = { sub: `loop-${stamp}-${i}`, email: `loop-${stamp}-${i}@example.com`, email_verified: true, name: `Loop ${i}`, sid: `idp-session-${stamp}-${i}` };
        who = user;
        const { cookie } = await signIn({ a, idpLocal });
        const headers = { cookie, ...JSON_ACCEPT };
        for (let k = 0; k < WARM_REQUESTS; k++) {
          for (const path of ['/now/item', '/app/item']) {
            const r = await fetchB(`${publicUrl}${path}`, { headers });
            const body = await r.text();
            if (r.status !== 200) throw new Error(`before the logout, B ${path}: ${r.status} ${body.slice(0, 200)}`);
          }
        }
        const sid = origin.lastSid();
        if (!sid) throw new Error('the origin saw no assertion with a session id');
        const t0 = await how.fire({ idp, a }, user);
        const cached = pollUntilRefused(`${publicUrl}/app/item`, headers, t0, fetchB).then((r) => (rep.cached = r));
        pending.push(cached);
        const [immediate, notice] = await Promise.all([pollUntilRefused(`${publicUrl}/now/item`, headers, t0, fetchB), origin.notice(sid, t0)]);
        rep.immediate = immediate;
        rep.notice = notice.error ? notice : { ms: notice.at - t0 };
      } catch (e) {
        for (const k of ['immediate', 'cached', 'notice']) rep[k] ??= { error: firstLine(e) };
      }
      // A repetition that could not finish would fail the same way again, each after the bound.
      if (rep.immediate?.error || rep.notice?.error) break;
    }
    await Promise.all(pending);
    const out = { trigger: how.label, reps, immediate: summary(reps.map((r) => r.immediate)), cached: summary(reps.map((r) => r.cached)), notice: summary(reps.map((r) => r.notice)) };
    log(`loop (${how.label}, ${LOOP_REPS} repetitions): ${describeLoop(out)}`);
    return out;
  } catch (e) {
    log(`loop not measured: ${firstLine(e)}`);
    return { error: firstLine(e) };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

const ms = (x) => `${Math.round(x)} ms`;
const figure = (s) => `median ${ms(s.median)}, max ${ms(s.max)} (${s.measured} of ${s.n})`;

export function describeLoop(loop) {
  if (loop.error) return `not measured: ${loop.error}`;
  const part = (name, s) => `${name} ${s.measured ? figure(s) : 'n/a'}${s.errors.length ? `, failed: ${s.errors[0]}` : ''}`;
  return [part('immediate route (B)', loop.immediate), part('cached route (B)', loop.cached), part('origin notice', loop.notice)].join('; ');
}

/** The rows of the bench's target table: [measure, figure, target, met (true/false/null)]. */
export function loopRows(loop) {
  const what = loop.trigger ?? TRIGGERS.backchannel.label;
  const rows = [
    [`loop: ${what} answered → first 401 at a \`revocation = "immediate"\` route in another isolate`, 'immediate', 'the next request', (s) => s.maxPolls === 1],
    [`loop: ${what} answered → first 401 at a cached route in another isolate (W = REVOCATION_CACHE_SECONDS = ${LOOP_WINDOW_S})`, 'cached', `≤ W (${LOOP_WINDOW_S} s, + one ${POLL_MS} ms poll)`, (s) => s.max <= LOOP_WINDOW_S * 1000 + POLL_MS],
    [`loop: ${what} answered → the route's \`logout_notify\` origin receives the logout notice`, 'notice', '(info; the queue batches for 1 s)', null],
  ];
  return rows.map(([measure, key, target, met]) => {
    if (loop.error) return [measure, `not measured: ${loop.error}`, target, null];
    const s = loop[key];
    if (s.errors.length) return [measure, `failed in ${s.errors.length} of ${s.n}: ${s.errors[0]}${s.measured ? `; others ${figure(s)}` : ''}`, target, false];
    const polls = key === 'notice' ? '' : `; ${s.maxPolls === 1 ? 'one poll each' : `up to ${s.maxPolls} polls`}`;
    return [measure, `${figure(s)}${polls}`, target, met ? met(s) : 'info'];
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Standalone: Gatehouse's modules as scripts/build.mjs builds them, wrangler's own Miniflare.
  const { buildWorker } = await import('../build.mjs');
  const { generateSigningJwk } = await import('../../src/keys/generate-jwk.ts');
  const { Miniflare } = createRequire(join(root, 'node_modules', 'wrangler', 'package.json'))('miniflare');
  const types = { '.js': 'esm', '.txt': 'text' };
  const { files } = await buildWorker();
  const modules = files
    .filter((f) => types[/\.[a-z]+$/.exec(f.name)?.[0]])
    .sort((x, y) => (x.name === 'index.js' ? -1 : y.name === 'index.js' ? 1 : 0))
    .map((f) => ({ name: f.name, type: types[/\.[a-z]+$/.exec(f.name)[0]], contents: Buffer.from(f.contents).toString('utf8') }));
  const started = Date.now();
  const loop = await measureLoop({ Miniflare, modules, signingKeys: JSON.stringify({ keys: [await generateSigningJwk('ES256')] }), log: (...x) => console.log('[bench:loop]', ...x) });
  console.log('\n| measure | figure | target | |');
  console.log('|---|---:|---:|---|');
  for (const [m, f, t, met] of loopRows(loop)) console.log(`| ${m} | ${f} | ${t} | ${met === null ? 'not measured' : met === 'info' ? 'info' : met ? 'met' : 'missed'} |`);
  for (const [i, r] of (loop.reps ?? []).entries()) {
    const one = (x) => (x?.error ? `failed (${x.error})` : `${Math.round(x.ms)} ms${x.polls ? ` (${x.polls} ${x.polls === 1 ? 'poll' : 'polls'})` : ''}`);
    console.log(`repetition ${i + 1}: immediate ${one(r.immediate)}, cached ${one(r.cached)}, notice ${one(r.notice)}`);
  }
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.exit(loop.error ? 1 : 0);
}
