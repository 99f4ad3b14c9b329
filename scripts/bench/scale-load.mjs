// The scale bench's load generator (scripts/bench/scale.mjs), in its own process. Reads one JSON
// job from the file named by argv[2] (ten thousand tokens do not fit in one argument):
//   { url, headers, sessions: [{ user, token }], concurrency, rounds, warmup, capSeconds, pairs }
// Each session is one simulated browser holding one refresh token. `warmup` refreshes first
// (their new tokens replace the old), then the measured run: `rounds` passes over every session
// in a shuffled order (users interleaved), `concurrency` requests in flight, each refresh
// carrying the token the previous one returned; it stops early at `capSeconds`. Prints
//   {"event":"start"}  just before the measured run (the runner samples workerd's CPU here)
//   {"event":"end"}    just after it (and here)
//   {"event":"done", ...}  after the two-tab pairs (`pairs`, below), with the figures
// Every response is checked: 200 with a JSON body holding an access and a refresh token is a
// success; 409 `conflict` and other statuses and network errors are counted, never fatal.
import { readFileSync } from 'node:fs';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const sessions = job.sessions.map((s) => ({ ...s }));

async function refresh(s) {
  const started = performance.now();
  try {
    const r = await fetch(job.url, { method: 'POST', headers: { 'content-type': 'application/json', ...job.headers }, body: JSON.stringify({ refresh_token: s.token }) });
    const text = await r.text();
    const ms = performance.now() - started;
    if (r.status === 200) {
      const body = JSON.parse(text);
      if (typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string') return { ms, kind: 'bad_body' };
      s.token = body.refresh_token;
      return { ms, kind: 'ok' };
    }
    if (r.status === 409) return { ms, kind: 'conflict' };
    return { ms, kind: `status_${r.status}`, sample: text.slice(0, 200) };
  } catch (e) {
    return { ms: performance.now() - started, kind: 'network_error', sample: String(e?.message ?? e) };
  }
}

async function run(queue, deadline) {
  const results = [];
  let next = 0;
  async function lane() {
    while (next < queue.length && performance.now() < deadline) {
      const s = queue[next++];
      results.push({ ...(await refresh(s)), user: s.user });
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, lane));
  return results;
}

function shuffled(list) {
  const a = list.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

await run(sessions.slice(0, job.warmup), Infinity);
process.stdout.write(`${JSON.stringify({ event: 'start' })}\n`);
const queue = [];
for (let r = 0; r < job.rounds; r++) queue.push(...shuffled(sessions));
const t0 = performance.now();
const results = await run(queue, t0 + job.capSeconds * 1000);
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ event: 'end' })}\n`); // the runner's second CPU sample

// Two tabs, after the measured run: `pairs` sessions each refreshed twice at once with the same
// token. The design's promise: exactly one 200 per pair, the other 409 `conflict`, never two
// rotations of one token.
const pairs = { sent: 0, oneWinner: 0, twoWinners: 0, other: 0 };
await Promise.all(
  sessions.slice(0, job.pairs ?? 0).map(async (s) => {
    const twin = { ...s };
    const [a, b] = await Promise.all([refresh(s), refresh(twin)]);
    const kinds = [a.kind, b.kind].sort().join(',');
    pairs.sent++;
    if (kinds === 'conflict,ok') pairs.oneWinner++;
    else if (kinds === 'ok,ok') pairs.twoWinners++;
    else pairs.other++;
  }),
);
const ok = results.filter((x) => x.kind === 'ok');
const lat = results.map((x) => x.ms).sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
const kinds = {};
const samples = {};
for (const x of results) {
  kinds[x.kind] = (kinds[x.kind] ?? 0) + 1;
  if (x.sample && !samples[x.kind]) samples[x.kind] = x.sample;
}
process.stdout.write(
  `${JSON.stringify({
    event: 'done',
    planned: queue.length,
    responses: results.length,
    seconds,
    rps: ok.length / seconds,
    p50: pct(50),
    p99: pct(99),
    ok: ok.length,
    conflicts: kinds.conflict ?? 0,
    errors: results.length - ok.length,
    kinds,
    samples,
    usersServed: new Set(ok.map((x) => x.user)).size,
    capped: results.length < queue.length,
    pairs,
  })}\n`,
);
