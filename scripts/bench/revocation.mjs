// Revocation latency as a figure (issue 10): time from a logout response to the first refused
// request with the signed-out access token, (a) in the isolate that handled the logout and (b) in
// another isolate: a second Miniflare instance (its own workerd process) running the same bundle
// with the same SIGNING_KEYS, sharing KV and D1 state with the first. See BENCHMARKS.md.
//
// Sharing: wrangler's miniflare 5 has no kvPersist/d1Persist any more; it has one
// `resourcePersistencePath` plus `unsafeEnableSharedStorage`, under which instances sharing that
// directory elect one storage owner through a dev registry and the others reach KV/D1 through
// it (what two `wrangler dev` sessions do). Without it, two workerd processes would each open
// the same SQLite files with their own in-process state, which is not what Cloudflare does.
//
// Bounded: polling stops at BENCH_REVOCATION_BOUND s (default 60: 1.5 times README's worst
// bound within a location, W + 30 s, at the default W = 10 s) and is then reported as a failure
// row ("not refused within N s"), never a hang.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const POLL_MS = Number(process.env.BENCH_REVOCATION_POLL_MS ?? 50);
const BOUND_S = Number(process.env.BENCH_REVOCATION_BOUND ?? 60);
const WARM_REQUESTS = 3; // verified requests before the logout, so the isolate cached "not revoked"
const PASSWORD = 'a benchmark passphrase, long enough';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The users' sessions objects, also the revocation fence (src/storage/user-sessions.ts). With USER_SESSIONS in
 * wrangler.toml, returns what the fenced variant needs: the binding to give the Gatehouse Worker
 * (class exported by the bundle's main module) and the ROUTES entry with
 * `revocation: "immediate"`; run.mjs adds both, measures the route under load, and
 * measureRevocationLatency() measures logout -> first 401 on it. Returns null without the binding.
 *
 * Another isolate: not through two Miniflare instances (miniflare 5 keeps Durable Object
 * storage per instance, isolatedResourcePersistencePath; unsafeEnableSharedStorage shares KV and
 * D1, not DOs, so a second instance would have a fence of its own). Instead two Gatehouse Workers
 * in ONE Miniflare: workerd runs each Worker in its own isolate (own module state, so its own
 * revocation cache), they share D1 and KV by id, and the second binds USER_SESSIONS to the
 * first's Durable Object class: one object per user for both, as on Cloudflare
 * (measureFencedOtherIsolate below).
 */
export function revocationFenceVariant(wranglerToml) {
  if (!/USER_SESSIONS/.test(wranglerToml)) return null;
  return {
    path: '/fenced',
    route: (origin) => ({ path: '/fenced', origin, auth: 'required', revocation: 'immediate' }),
    durableObjects: { USER_SESSIONS: 'UserSessions' },
  };
}

async function signIn(base, publicUrl, email, register) {
  const r = await fetch(`${base}/auth/${register ? 'register' : 'login'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: publicUrl },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const body = await r.text();
  if (r.status !== (register ? 201 : 200)) throw new Error(`${register ? 'register' : 'login'}: ${r.status} ${body.slice(0, 200)}`);
  const { access_token: access, refresh_token: refresh } = JSON.parse(body);
  if (!access || !refresh) throw new Error(`sign-in answered no tokens (cookie mode?): ${body.slice(0, 200)}`);
  return { access, refresh };
}

async function expectStatus(url, headers, want, label, fetcher = fetch) {
  const r = await fetcher(url, { headers });
  const body = await r.text();
  if (r.status !== want) throw new Error(`${label}: expected ${want}, got ${r.status} ${body.slice(0, 200)}`);
}

/** POSTs the logout; resolves at the moment its response has been read. */
async function logout(base, publicUrl, tokens) {
  const r = await fetch(`${base}/auth/logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: publicUrl, authorization: `Bearer ${tokens.access}` },
    body: JSON.stringify({ refresh_token: tokens.refresh }),
  });
  const body = await r.text();
  const done = performance.now();
  if (r.status !== 200) throw new Error(`logout: ${r.status} ${body.slice(0, 200)}`);
  if (JSON.parse(body).ended_sessions !== 1) throw new Error(`logout ended no session: ${body}`);
  return done;
}

/**
 * Polls `url` with the old credentials (`headers`: a bearer token or a session cookie) every
 * POLL_MS until the first 401 answer, up to BOUND_S. Returns { ms, polls } (ms from `since`, the
 * revocation's response, to the refusal's response), or { error } (the bound passed, or an
 * answer other than 200/401).
 */
export async function pollUntilRefused(url, headers, since, fetcher = fetch) {
  const deadline = since + BOUND_S * 1000;
  let polls = 0;
  for (;;) {
    const r = await fetcher(url, { headers });
    const body = await r.text();
    const now = performance.now();
    polls++;
    if (r.status === 401) return { ms: now - since, polls };
    if (r.status !== 200) return { error: `unexpected ${r.status} ${body.slice(0, 120)} after ${polls} polls` };
    if (now >= deadline) return { error: `not refused within ${BOUND_S} s (${polls} polls, every ${POLL_MS} ms)` };
    await sleep(POLL_MS);
  }
}

/**
 * Measures both figures. `startGatehouse(instanceOptions)` starts one Gatehouse Worker (same
 * bundle, same SIGNING_KEYS, KV/D1 ids as every other call) in its own Miniflare instance, served
 * as `publicUrl` (default: its own port's https origin), and resolves to { mf, url, publicUrl }; `migrate(mf)` applies the D1 migrations.
 * Resolves to { same, other, sharing } where same/other are { ms, polls } or { error }.
 */
export async function measureRevocationLatency({ startGatehouse, migrate, work, path, fencedPath, log }) {
  const persist = join(work, 'revocation-state');
  const registry = join(work, 'revocation-dev-registry'); // private: not other `wrangler dev` sessions'
  mkdirSync(persist, { recursive: true });
  mkdirSync(registry, { recursive: true });
  // Each instance its own isolated path (Durable Objects, cache): two workerd processes must not
  // open the same DO SQLite files.
  const shared = (instance) => ({
    resourcePersistencePath: persist,
    isolatedResourcePersistencePath: join(persist, `isolated-${instance}`),
    unsafeEnableSharedStorage: true,
    enableDevRegistry: true,
    unsafeDevRegistryPath: registry,
  });
  const out = { same: null, other: null, fencedSame: null, sharing: 'miniflare shared storage (resourcePersistencePath + unsafeEnableSharedStorage)' };
  const a = await startGatehouse(shared('a'));
  await migrate(a.mf);
  const stamp = Date.now();

  // (a) the same isolate: it made the revocation itself.
  try {
    const tokens = await signIn(a.url, a.publicUrl, `revoke-a-${stamp}@example.com`, true);
    for (let i = 0; i < WARM_REQUESTS; i++) await expectStatus(`${a.url}${path}`, { authorization: `Bearer ${tokens.access}` }, 200, 'before logout (A)');
    const since = await logout(a.url, a.publicUrl, tokens);
    out.same = await pollUntilRefused(`${a.url}${path}`, { authorization: `Bearer ${tokens.access}` }, since);
  } catch (e) {
    out.same = { error: String(e?.message ?? e).split('\n')[0] };
  }

  // (a') the same isolate, on the `revocation = "immediate"` route (the fence asked per request).
  if (fencedPath) {
    try {
      const tokens = await signIn(a.url, a.publicUrl, `revoke-f-${stamp}@example.com`, true);
      for (let i = 0; i < WARM_REQUESTS; i++) await expectStatus(`${a.url}${fencedPath}`, { authorization: `Bearer ${tokens.access}` }, 200, 'before logout (fenced, A)');
      const since = await logout(a.url, a.publicUrl, tokens);
      out.fencedSame = await pollUntilRefused(`${a.url}${fencedPath}`, { authorization: `Bearer ${tokens.access}` }, since);
    } catch (e) {
      out.fencedSame = { error: String(e?.message ?? e).split('\n')[0] };
    }
  }

  // (b) another isolate: sign in and sign out on A, present the token to B, which cached
  // "not revoked" for the session before the logout.
  try {
    // B is another isolate of the same deployment: same PUBLIC_URL (the tokens' issuer and
    // audience), served as the same origin.
    const b = await startGatehouse(shared('b'), a.publicUrl);
    const tokens = await signIn(a.url, a.publicUrl, `revoke-b-${stamp}@example.com`, true);
    // B must see A's session through the shared state (it verifies the token itself; a login
    // on B proves D1 is shared too, and its session is not the one measured).
    await signIn(b.url, a.publicUrl, `revoke-b-${stamp}@example.com`, false);
    for (let i = 0; i < WARM_REQUESTS; i++) await expectStatus(`${b.url}${path}`, { authorization: `Bearer ${tokens.access}` }, 200, 'before logout (B)');
    const since = await logout(a.url, a.publicUrl, tokens);
    out.other = await pollUntilRefused(`${b.url}${path}`, { authorization: `Bearer ${tokens.access}` }, since);
    await b.mf.dispose().catch(() => {});
  } catch (e) {
    out.other = { error: String(e?.message ?? e).split('\n')[0] };
  }
  await a.mf.dispose().catch(() => {});
  log(`revocation latency: same isolate ${describe(out.same)}; another isolate ${describe(out.other)}${fencedPath ? `; fenced route, same isolate ${describe(out.fencedSame)}` : ''}`);
  return out;
}

/**
 * The fence seen from another isolate: `startPair()` starts two Gatehouse Workers in one
 * Miniflare (A serves `url`, B is reached through `fetchB(url, init)`, both as `publicUrl`), B's
 * USER_SESSIONS bound to A's Durable Object, D1 and KV shared. Register on A, sign in on B
 * (D1 is shared), three requests on B's fenced route and three on its plain verified route
 * (B's isolate caches "not revoked" for the session), sign out on A, then poll B's fenced route.
 * Resolves to { fenced, plainFirstPoll } where fenced is { ms, polls } or { error }, and
 * plainFirstPoll is B's plain route's status right after the refusal: 200 shows that B is an
 * isolate of its own whose cache still answers (so the fence, not a shared cache, refused).
 */
export async function measureFencedOtherIsolate({ startPair, migrate, path, fencedPath, log }) {
  const out = { fenced: null, plainFirstPoll: null };
  let pair;
  try {
    pair = await startPair();
    await migrate(pair.mf);
    const { url, publicUrl, fetchB } = pair;
    const email = `revoke-fence-b-${Date.now()}@example.com`;
    const tokens = await signIn(url, publicUrl, email, true);
    const r = await fetchB(`${publicUrl}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: publicUrl },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    await r.text();
    if (r.status !== 200) throw new Error(`login on B: ${r.status}`);
    const auth = { authorization: `Bearer ${tokens.access}` };
    for (let i = 0; i < WARM_REQUESTS; i++) {
      await expectStatus(`${publicUrl}${fencedPath}`, auth, 200, 'before logout (fenced, B)', fetchB);
      await expectStatus(`${publicUrl}${path}`, auth, 200, 'before logout (B)', fetchB);
    }
    const since = await logout(url, publicUrl, tokens);
    out.fenced = await pollUntilRefused(`${publicUrl}${fencedPath}`, auth, since, fetchB);
    const plain = await fetchB(`${publicUrl}${path}`, { headers: auth });
    await plain.text();
    out.plainFirstPoll = plain.status;
  } catch (e) {
    out.fenced = { error: String(e?.message ?? e).split('\n')[0] };
  }
  await pair?.mf.dispose().catch(() => {});
  log(`revocation latency with the fence, another isolate: ${describe(out.fenced)}; B's plain verified route right after: ${out.plainFirstPoll ?? 'n/a'}`);
  return out;
}

export function describe(r) {
  if (!r) return 'n/a';
  return r.error ? `failed: ${r.error}` : `${r.ms.toFixed(0)} ms (${r.polls} ${r.polls === 1 ? 'poll' : 'polls'} every ${POLL_MS} ms)`;
}

export const REVOCATION_BOUND_S = BOUND_S;
