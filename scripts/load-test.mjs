#!/usr/bin/env node
// `npm run load-test`: a bounded, loopback-only load test of a running gateway. It signs up a
// few users, makes some of their tokens revoked (logout) and forges invalid ones, then fires a
// random mix of valid, invalid and revoked tokens at `/auth/me` and `/auth/verify` with
// autocannon, checking every single answer: valid -> 200, invalid or revoked -> 401 (429 is
// accepted as a refusal where a rate limit guards failures). It reports the counts, any wrong
// answer, any 5xx, and the latency, and exits non-zero if anything was wrong.
//
//   npm run load-test                                   # against http://127.0.0.1:8787 (npm run dev)
//   npm run load-test -- --url http://127.0.0.1:9000 --requests 5000 --connections 20
//   npm run load-test -- --start                        # starts its own wrangler dev first
//
// Not part of `npm test`: speed is measured here, never asserted in tests.
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { startGateway } from './lib/gateway.mjs';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:8787' },
    requests: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '16' },
    users: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    start: { type: 'boolean', default: false },
  },
});

const MAX_REQUESTS = 100_000;
const MAX_CONNECTIONS = 100;
const amount = Math.min(Number(opts.requests), MAX_REQUESTS);
const connections = Math.min(Number(opts.connections), MAX_CONNECTIONS);
const userCount = Math.min(Math.max(Number(opts.users), 1), 20);
if (!Number.isInteger(amount) || amount < 1 || !Number.isInteger(connections) || connections < 1) {
  console.error('--requests and --connections must be positive whole numbers');
  process.exit(2);
}

/** Loopback only: this tool must never be pointed at someone else's service. */
function assertLoopback(url) {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host))) {
    console.error(`refusing to load-test ${host}: loopback addresses only (127.0.0.0/8, ::1, localhost)`);
    process.exit(2);
  }
}

/** A small seeded PRNG (mulberry32), so a run's mix can be repeated with --seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function json(url, init) {
  const r = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...init?.headers } });
  const text = await r.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* kept as text for the error message */
  }
  return { status: r.status, body };
}

async function prepareTokens(base) {
  const valid = [];
  const revoked = [];
  const run = Date.now().toString(36);
  for (let i = 0; i < userCount; i++) {
    const email = `load-${run}-${i}@example.com`;
    const password = `load test password ${run} ${i}`;
    let reg = await json(`${base}/auth/register`, { method: 'POST', body: JSON.stringify({ email, password }) });
    // A freshly started wrangler dev may answer its very first requests with 503 while it
    // settles; setup waits for that (the measured run below tolerates no 5xx at all).
    for (let attempt = 0; reg.status === 503 && attempt < 10; attempt++) {
      await new Promise((r) => setTimeout(r, 1000));
      reg = await json(`${base}/auth/register`, { method: 'POST', body: JSON.stringify({ email, password }) });
    }
    if (reg.status !== 201) throw new Error(`registration failed (${reg.status}): ${JSON.stringify(reg.body)}`);
    valid.push(reg.body.access_token);
    // A second session whose access token is then revoked by signing out.
    const second = await json(`${base}/auth/login`, { method: 'POST', body: JSON.stringify({ email, password }) });
    if (second.status !== 200) throw new Error(`sign-in failed (${second.status}): ${JSON.stringify(second.body)}`);
    const out = await fetch(`${base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${second.body.access_token}` } });
    if (out.status !== 200) throw new Error(`logout failed (${out.status})`);
    revoked.push(second.body.access_token);
  }
  const sample = valid[0];
  const [h, p, s] = sample.split('.');
  const flip = (str, i) => str.slice(0, i) + (str[i] === 'A' ? 'B' : 'A') + str.slice(i + 1);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const invalid = [
    `${h}.${p}.${flip(s, Math.floor(s.length / 2))}`, // tampered signature
    `${h}.${flip(p, 10)}.${s}`, // tampered claims
    `${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`, // alg none
    `${b64({ alg: 'HS256', typ: 'at+jwt', kid: 'nope' })}.${p}.${s}`, // unknown kid, wrong alg
    'not-a-token',
    `${h}.${p}`, // truncated
  ];
  // Every valid token must be accepted before the run, or the run would prove nothing.
  for (const t of valid) {
    const r = await fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${t}` } });
    if (r.status !== 200) throw new Error(`a fresh token was refused (${r.status})`);
  }
  return { valid, revoked, invalid };
}

async function main() {
  let gateway = null;
  let base = opts.url.replace(/\/+$/, '');
  if (opts.start) {
    process.stdout.write('starting wrangler dev ... ');
    gateway = await startGateway();
    base = gateway.url;
    console.log(base);
  }
  assertLoopback(base);
  try {
    const tokens = await prepareTokens(base);
    const random = prng(Number(opts.seed));
    const pick = (list) => list[Math.floor(random() * list.length)];
    const tally = {};
    const wrong = [];
    let fiveXx = 0;
    const count = (kind, path, status) => {
      const key = `${kind} ${path}`;
      tally[key] ??= {};
      tally[key][status] = (tally[key][status] ?? 0) + 1;
    };

    const result = await autocannon({
      url: base,
      connections,
      amount,
      requests: [
        {
          method: 'GET',
          // Each connection sends one request at a time, so its context names the one in flight.
          setupRequest(req, context) {
            const r = random();
            const kind = r < 0.5 ? 'valid' : r < 0.75 ? 'invalid' : 'revoked';
            const path = random() < 0.5 ? '/auth/me' : '/auth/verify';
            context.kind = kind;
            context.path = path;
            return { ...req, path, headers: { ...req.headers, authorization: `Bearer ${pick(tokens[kind])}` } };
          },
          onResponse(status, _body, context) {
            const { kind, path } = context;
            count(kind, path, status);
            if (status >= 500) fiveXx += 1;
            const ok = kind === 'valid' ? status === 200 : status === 401 || (status === 429 && path === '/auth/verify');
            if (!ok && wrong.length < 20) wrong.push({ kind, path, status });
          },
        },
      ],
    });

    const wrongTotal = Object.entries(tally).reduce((n, [key, statuses]) => {
      const [kind, path] = key.split(' ');
      return n + Object.entries(statuses).filter(([s]) => {
        const status = Number(s);
        return kind === 'valid' ? status !== 200 : !(status === 401 || (status === 429 && path === '/auth/verify'));
      }).reduce((m, [, c]) => m + c, 0);
    }, 0);
    const checked = Object.values(tally).reduce((n, st) => n + Object.values(st).reduce((a, b) => a + b, 0), 0);

    console.log(`\nGatehouse load test against ${base}`);
    console.log(`requests: ${checked} checked of ${amount} planned, ${connections} connections, seed ${opts.seed}`);
    console.log('answers by kind and path:');
    for (const [key, statuses] of Object.entries(tally).sort()) console.log(`  ${key.padEnd(22)} ${JSON.stringify(statuses)}`);
    console.log(`latency ms: p50 ${result.latency.p50}, p90 ${result.latency.p90}, p99 ${result.latency.p99}, max ${result.latency.max}`);
    console.log(`throughput: ${result.requests.average} req/s average over ${result.duration.toFixed(1)} s`);
    console.log(`transport errors: ${result.errors}, timeouts: ${result.timeouts}`);
    console.log(`5xx answers: ${fiveXx}`);
    console.log(`wrong answers: ${wrongTotal}${wrong.length ? ` (first: ${JSON.stringify(wrong.slice(0, 5))})` : ''}`);
    const pass = wrongTotal === 0 && fiveXx === 0 && result.errors === 0 && result.timeouts === 0 && checked === amount;
    console.log(pass ? 'RESULT: every response was correct and none was a 5xx' : 'RESULT: FAILED');
    process.exitCode = pass ? 0 : 1;
  } finally {
    await gateway?.stop();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
