/**
 * Back-channel logout to relying parties (OpenID Connect Back-Channel Logout 1.0): every way a
 * gateway session ends owes each client holding a grant on it one signed logout token, written
 * in the user's object with the end and delivered by the object's alarm; what the token says;
 * retries with backoff until given up, each outcome audited; clients that cannot be told; and
 * a sign-out that never waits for a relying party.
 *
 * The relying parties answer from this file (global `fetch` is replaced for their origins
 * only: the mail tests' inbox is reached for real). The object's env is the pool's bindings
 * (vitest.config.ts), so requests here use its signing key and PUBLIC_URL too.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deliverLogout, LOGOUT_DEADLINE_MS, logoutUriAllowed } from '../../../src/auth/backchannel-logout';
import { generateSigningJwk } from '../../../src/keys/keyring';
import { deliverDueLogouts, LOGOUT_BATCH, LOGOUT_RETRY_S } from '../../../src/storage/logout-outbox';
import { randomId } from '../../../src/util/random';
import { bearer, call, GOOD_PASSWORD, makeEnv, PUBLIC_URL, seedUser, testKey, type TestEnv } from '../support/helpers';
import { mailEnv, uniqueEmail } from '../support/mail';
import { seedClient } from '../support/oauth-clients';
import { ok, sessionEndings, sidOf, twoSessions } from '../support/session-endings';
import { sessionExec, sessionRows, sessionsObject } from '../support/user-sessions-store';

/** The object's own key and URL (an env of the pool's bindings), mail on for the flows that need a link. */
const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', SIGNING_KEYS: env.SIGNING_KEYS, PUBLIC_URL: env.PUBLIC_URL });
const now = () => Math.floor(Date.now() / 1000);

// ---- relying parties on a fake network ----

type Rp = (request: Request) => Promise<Response> | Response;
const rps = new Map<string, Rp>();
/** Every request a relying party received: its origin, method, headers and body. */
let received: { origin: string; method: string; contentType: string | null; body: string }[] = [];
const realFetch = globalThis.fetch;

beforeEach(() => {
  received = [];
  const fakeFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const origin = new URL(request.url).origin;
    const rp = rps.get(origin);
    if (!rp) return realFetch(input, init);
    received.push({ origin, method: request.method, contentType: request.headers.get('content-type'), body: new TextDecoder().decode(await request.clone().arrayBuffer()) });
    const response = await rp(request);
    // Like a real fetch: a redirect is followed unless the caller asked for `manual`.
    const location = response.headers.get('location');
    if (request.redirect === 'manual' || location === null || response.status < 300 || response.status > 399) return response;
    return fakeFetch(new URL(location, request.url), { method: 'GET', signal: request.signal });
  };
  vi.stubGlobal('fetch', fakeFetch);
});
afterEach(() => {
  vi.unstubAllGlobals();
  rps.clear();
});

const answers = (status: number): Rp => () => new Response(null, { status });

/**
 * The delivery deadline without its five seconds of waiting: each `AbortSignal.timeout` gives a
 * signal of ours, fired as a timeout fires once a relying party holds the request without
 * answer (below). `asked` keeps the durations asked for, so the deadline itself stays pinned.
 */
let deadlines: { asked: number[]; pending: AbortController[] } = { asked: [], pending: [] };
beforeEach(() => {
  deadlines = { asked: [], pending: [] };
  vi.spyOn(AbortSignal, 'timeout').mockImplementation((ms: number) => {
    const timer = new AbortController();
    deadlines.asked.push(ms);
    deadlines.pending.push(timer);
    return timer.signal;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Never answers; gives up only when the caller aborts (its deadline passes at once). */
const hangs: Rp = (request) =>
  new Promise((_, reject) => {
    request.signal.addEventListener('abort', () => reject(request.signal.reason));
    for (const timer of deadlines.pending.splice(0)) timer.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  });

/** A client with a back-channel logout URI on an origin of its own, answering with `rp`. */
async function rpClient(rp: Rp = answers(204), uri?: (origin: string) => string) {
  const origin = `https://rp-${randomId(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}.example.org`;
  rps.set(origin, rp);
  const { client } = await seedClient({ backchannelLogoutUri: uri ? uri(origin) : `${origin}/backchannel-logout` });
  return { client, origin };
}

/** A grant of the client on the session, as the token endpoint stores it (created `at`). */
async function grant(userId: string, sessionId: string, clientId: string, at = now()) {
  await sessionExec(
    'INSERT INTO oauth_grants (id, session_id, client_id, scope, resource, refresh_hash, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?, NULL)',
    [`grt_${randomId(12)}`, sessionId, clientId, 'openid', at, at + 86_400, at],
    userId,
  );
}

const outbox = (userId: string) =>
  sessionRows<{ client_id: string; session_id: string; attempts: number; next_at: number }>('SELECT client_id, session_id, attempts, next_at FROM oauth_logout_outbox ORDER BY id', [], userId);

/** The audited outcomes for the user, oldest first. */
async function outcomes(userId: string) {
  const { results } = await env.DB.prepare("SELECT event, detail FROM auth_events WHERE user_id = ? AND event LIKE 'backchannel_logout_%' ORDER BY id").bind(userId).all<{ event: string; detail: string }>();
  return results.map((r) => ({ event: r.event, ...(JSON.parse(r.detail) as { client_id: string; sid: string; attempt: number; status?: number | string; retry_in_s?: number; reason?: string }) }));
}

/**
 * Runs the user's alarm now (it may have fired on its own already: then this runs the next one
 * early, which finds nothing due) and waits until `n` outcomes are audited and nothing is in flight.
 */
async function deliver(userId: string, n: number) {
  await runDurableObjectAlarm(sessionsObject(userId));
  await vi.waitFor(async () => expect((await outcomes(userId)).length).toBe(n), { timeout: LOGOUT_DEADLINE_MS + 3000, interval: 50 });
}

/** Makes the next try of every owed logout due now, and runs the alarm. */
async function retryNow(userId: string, n: number) {
  await sessionExec('UPDATE oauth_logout_outbox SET next_at = ?', [now() - 1], userId);
  await deliver(userId, n);
}

const account = (roles: string[] = []) => twoSessions(e, 'bcl', roles);

// ---- every way a session ends ----

const endings = sessionEndings(e);

describe('every way a session ends owes one logout token to each client holding a grant on it', () => {
  it.each(endings)('$name', async (ending) => {
    const u = await account();
    const [twoGrants, oneGrant, otherSession] = [await rpClient(), await rpClient(), await rpClient()];
    const { client: withoutUri } = await seedClient();
    await grant(u.userId, sidOf(u.a), twoGrants.client.id);
    await grant(u.userId, sidOf(u.a), twoGrants.client.id);
    await grant(u.userId, sidOf(u.a), oneGrant.client.id);
    await grant(u.userId, sidOf(u.a), withoutUri.id);
    await grant(u.userId, sidOf(u.b), otherSession.client.id);

    await ending.end(u);
    const expected = [
      { client_id: twoGrants.client.id, sid: sidOf(u.a) },
      { client_id: oneGrant.client.id, sid: sidOf(u.a) },
      ...(ending.endsAll ? [{ client_id: otherSession.client.id, sid: sidOf(u.b) }] : []),
    ];
    await deliver(u.userId, expected.length);
    const audited = await outcomes(u.userId);
    expect(audited.map(({ client_id, sid }) => ({ client_id, sid })).sort((x, y) => x.client_id.localeCompare(y.client_id))).toEqual(
      expected.sort((x, y) => x.client_id.localeCompare(y.client_id)),
    );
    expect(audited.every((o) => o.event === 'backchannel_logout_delivered' && o.attempt === 1 && o.status === 204)).toBe(true);
    // One POST per client told, none to a client without a URI or whose session lives on.
    const origins = expected.map((x) => [twoGrants, oneGrant, otherSession].find((c) => c.client.id === x.client_id)!.origin);
    expect(received.map((r) => r.origin).sort()).toEqual(origins.sort());
    expect(await outbox(u.userId)).toEqual([]);
    // Ending it again owes nothing more.
    await runDurableObjectAlarm(sessionsObject(u.userId));
    expect(received).toHaveLength(expected.length);
  });

  it('a grant made after the session ended is not told; a session ended before owes nothing when ended "again"', async () => {
    const u = await account();
    const early = await rpClient();
    const late = await rpClient();
    await grant(u.userId, sidOf(u.a), early.client.id);
    await grant(u.userId, sidOf(u.a), late.client.id, now() + 3600);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    expect((await outcomes(u.userId)).map((o) => o.client_id)).toEqual([early.client.id]);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await runDurableObjectAlarm(sessionsObject(u.userId));
    expect(received.map((r) => r.origin)).toEqual([early.origin]);
  });
});

// ---- the logout token ----

describe('the logout token', () => {
  it('is POSTed form-encoded, verifies against the gateway\'s JWKS, typed logout+jwt, with exactly iss, aud, iat, exp, jti, sub, sid and the event; no nonce', async () => {
    const u = await account();
    const rp = await rpClient(answers(200));
    await grant(u.userId, sidOf(u.a), rp.client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request!.method).toBe('POST');
    expect(request!.contentType).toBe('application/x-www-form-urlencoded');
    const form = new URLSearchParams(request!.body);
    expect([...form.keys()]).toEqual(['logout_token']);
    const token = form.get('logout_token')!;

    const jwks = (await (await call('/.well-known/jwks.json', { env: e })).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: rp.client.id, typ: 'logout+jwt' });
    expect(protectedHeader).toEqual({ alg: 'ES256', kid: 'test-object-key', typ: 'logout+jwt' });
    expect(Object.keys(payload).sort()).toEqual(['aud', 'events', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub']);
    expect(payload).toMatchObject({ iss: PUBLIC_URL, aud: rp.client.id, sub: u.userId, sid: sidOf(u.a), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(120);
    expect(payload.exp! - payload.iat!).toBeGreaterThan(0);
    expect(Math.abs(payload.iat! - now())).toBeLessThanOrEqual(5);
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    expect(await outcomes(u.userId)).toEqual([{ event: 'backchannel_logout_delivered', client_id: rp.client.id, sid: sidOf(u.a), attempt: 1, status: 200 }]);
  });

  it('every token is another (its own jti), one per client, each for that client alone', async () => {
    const u = await account();
    const one = await rpClient();
    const two = await rpClient();
    await grant(u.userId, sidOf(u.a), one.client.id);
    await grant(u.userId, sidOf(u.a), two.client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 2);
    const tokens = received.map((r) => new URLSearchParams(r.body).get('logout_token')!);
    const claims = tokens.map((t) => decodeJwt(t));
    expect(new Set(claims.map((c) => c.jti)).size).toBe(2);
    expect(claims.map((c) => c.aud).sort()).toEqual([one.client.id, two.client.id].sort());
    expect(tokens.map((t) => decodeProtectedHeader(t).typ)).toEqual(['logout+jwt', 'logout+jwt']);
  });
});

describe('the logout token\'s key', () => {
  it('is the ID tokens\' ES256 key when the active key is EdDSA: a relying party verifies both alike', async () => {
    const keyed = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk('EdDSA'), testKey] }) });
    const user = await seedUser({ email: uniqueEmail('bcl'), verified: true });
    const rp = await rpClient(answers(200));
    expect(await deliverLogout(keyed, { userId: user.id, clientId: rp.client.id, sessionId: 'ses_ended', attempt: 1, retryInS: LOGOUT_RETRY_S[0] })).toBe('delivered');
    const token = new URLSearchParams(received[0]!.body).get('logout_token')!;
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: testKey.kid, typ: 'logout+jwt' });
    const jwks = (await (await call('/.well-known/jwks.json', { env: keyed })).json()) as JSONWebKeySet;
    await jwtVerify(token, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: rp.client.id, typ: 'logout+jwt', algorithms: ['ES256'] });
  });
});

// ---- failures, retries, giving up ----

describe('a relying party that fails is tried again with backoff, then given up; every outcome audited', () => {
  it.each([
    ['answers 500', answers(500), 500],
    ['cannot be reached', () => Promise.reject(new TypeError('connection refused')), 'unreachable'],
    ['redirects (never followed)', () => new Response(null, { status: 307, headers: { location: 'https://elsewhere.example.org/' } }), 307],
  ] as const)('%s', async (_name, rp, status) => {
    // Where the redirect points: a relying party that would say 204.
    rps.set('https://elsewhere.example.org', answers(204));
    const u = await account();
    const { client, origin } = await rpClient(rp);
    await grant(u.userId, sidOf(u.a), client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    for (let i = 0; i < LOGOUT_RETRY_S.length; i++) {
      const [row] = await outbox(u.userId);
      expect(row).toMatchObject({ client_id: client.id, session_id: sidOf(u.a), attempts: i + 1 });
      expect(row!.next_at - now()).toBeGreaterThan(LOGOUT_RETRY_S[i]! - 5);
      expect(row!.next_at - now()).toBeLessThanOrEqual(LOGOUT_RETRY_S[i]!);
      // Not due yet: the alarm tries nothing.
      await runDurableObjectAlarm(sessionsObject(u.userId));
      expect(received).toHaveLength(i + 1);
      await retryNow(u.userId, i + 2);
    }
    expect(await outbox(u.userId)).toEqual([]);
    const audited = await outcomes(u.userId);
    expect(audited).toEqual([
      ...LOGOUT_RETRY_S.map((retry, i) => ({ event: 'backchannel_logout_failed', client_id: client.id, sid: sidOf(u.a), attempt: i + 1, status, retry_in_s: retry })),
      { event: 'backchannel_logout_abandoned', client_id: client.id, sid: sidOf(u.a), attempt: LOGOUT_RETRY_S.length + 1, status },
    ]);
    expect(received.map((r) => r.origin)).toEqual(Array(LOGOUT_RETRY_S.length + 1).fill(origin));
    expect(LOGOUT_RETRY_S).toEqual([30, 120, 600, 3600, 21_600]);
  });

  it('one that recovers is told on its next try, and then no more', async () => {
    const u = await account();
    let status = 503;
    const { client } = await rpClient(() => new Response(null, { status }));
    await grant(u.userId, sidOf(u.a), client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    status = 204;
    await retryNow(u.userId, 2);
    expect((await outcomes(u.userId)).map((o) => [o.event, o.attempt, o.status])).toEqual([
      ['backchannel_logout_failed', 1, 503],
      ['backchannel_logout_delivered', 2, 204],
    ]);
    expect(await outbox(u.userId)).toEqual([]);
  });

  it(`one that does not answer is given up after ${LOGOUT_DEADLINE_MS / 1000} s, a failed try`, async () => {
    const u = await account();
    const { client } = await rpClient(hangs);
    await grant(u.userId, sidOf(u.a), client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    expect(deadlines.asked).toEqual([LOGOUT_DEADLINE_MS]);
    expect(await outcomes(u.userId)).toEqual([{ event: 'backchannel_logout_failed', client_id: client.id, sid: sidOf(u.a), attempt: 1, status: 'timeout', retry_in_s: 30 }]);
    expect(await outbox(u.userId)).toMatchObject([{ attempts: 1 }]);
  });
});

// ---- clients that cannot be told ----

describe('a client that can no longer be told is dropped at delivery', () => {
  it.each([
    ['disabled since', async (id: string) => { await env.DB.prepare('UPDATE oauth_clients SET disabled_at = ? WHERE id = ?').bind(now(), id).run(); }, 'client_disabled'],
    ['deleted since', async (id: string) => { await env.DB.prepare('DELETE FROM oauth_clients WHERE id = ?').bind(id).run(); }, 'client_unknown'],
    ['whose URI is plain http (production)', async (id: string) => { await env.DB.prepare("UPDATE oauth_clients SET backchannel_logout_uri = 'http://rp.example.org/logout' WHERE id = ?").bind(id).run(); }, 'uri_not_allowed'],
  ] as const)('%s: audited, nothing sent', async (_name, change, reason) => {
    const u = await account();
    const { client } = await rpClient();
    await grant(u.userId, sidOf(u.a), client.id);
    await change(client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    expect(await outcomes(u.userId)).toEqual([{ event: 'backchannel_logout_dropped', client_id: client.id, sid: sidOf(u.a), attempt: 1, reason }]);
    expect(received).toEqual([]);
    expect(await outbox(u.userId)).toEqual([]);
  });

  it('whose URI was removed: nothing sent, nothing left owed', async () => {
    const u = await account();
    const { client } = await rpClient();
    await grant(u.userId, sidOf(u.a), client.id);
    await env.DB.prepare('UPDATE oauth_clients SET backchannel_logout_uri = NULL WHERE id = ?').bind(client.id).run();
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await runDurableObjectAlarm(sessionsObject(u.userId));
    await vi.waitFor(async () => expect(await outbox(u.userId)).toEqual([]), { interval: 50 });
    expect(received).toEqual([]);
  });

  it('only https URIs, or plain http to loopback in development; never a fragment or credentials', () => {
    const production = { isDevelopment: false };
    const development = { isDevelopment: true };
    expect(logoutUriAllowed('https://rp.example.org/logout', production)).toBe(true);
    expect(logoutUriAllowed('http://rp.example.org/logout', production)).toBe(false);
    expect(logoutUriAllowed('http://localhost:3000/logout', production)).toBe(false);
    expect(logoutUriAllowed('http://localhost:3000/logout', development)).toBe(true);
    expect(logoutUriAllowed('http://127.0.0.1:3000/logout', development)).toBe(true);
    expect(logoutUriAllowed('http://[::1]:3000/logout', development)).toBe(true);
    expect(logoutUriAllowed('http://rp.example.org/logout', development)).toBe(false);
    expect(logoutUriAllowed('https://rp.example.org/logout#x', production)).toBe(false);
    expect(logoutUriAllowed('https://rp.example.org/logout#', production)).toBe(false);
    expect(logoutUriAllowed('https://user:pw@rp.example.org/logout', production)).toBe(false);
    expect(logoutUriAllowed('not a url', production)).toBe(false);
  });
});

// ---- a slow relying party never delays a sign-out ----

describe('a sign-out never waits for a relying party', () => {
  it('answers while the relying party hangs; the delivery fails later, on its own', async () => {
    const u = await account();
    const { client } = await rpClient(hangs);
    await grant(u.userId, sidOf(u.a), client.id);
    const started = Date.now();
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    expect(Date.now() - started).toBeLessThan(LOGOUT_DEADLINE_MS - 2000);
    // The object's alarm, not the sign-out, reaches the relying party, which does not answer.
    await runDurableObjectAlarm(sessionsObject(u.userId));
    await vi.waitFor(() => expect(received).toHaveLength(1), { interval: 20 });
    await vi.waitFor(async () => expect(await outcomes(u.userId)).toMatchObject([{ event: 'backchannel_logout_failed', status: 'timeout' }]), { interval: 50 });
  });
});

// ---- the object's own bounds ----

describe('the outbox in the user\'s object', () => {
  it('the owed logout outlives the account\'s deletion (the object is wiped but for it)', async () => {
    const u = await account();
    const { client } = await rpClient(answers(500));
    await grant(u.userId, sidOf(u.a), client.id);
    await ok(call('/auth/account/delete', { json: { password: GOOD_PASSWORD }, headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    expect(await sessionRows('SELECT id FROM sessions', [], u.userId)).toEqual([]);
    expect(await sessionRows('SELECT id FROM oauth_grants', [], u.userId)).toEqual([]);
    expect(await outbox(u.userId)).toMatchObject([{ client_id: client.id, session_id: sidOf(u.a), attempts: 1 }]);
    // The alarm that delivers the rest is set.
    const alarm = await runInDurableObject(sessionsObject(u.userId), (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! / 1000).toBeLessThanOrEqual(now() + LOGOUT_RETRY_S[0]! + 1);
  });

  it('forgetting the user (account deletion) ends a session still live and owes its clients their logout', async () => {
    const u = await account();
    const { client } = await rpClient();
    await grant(u.userId, sidOf(u.a), client.id);
    await sessionsObject(u.userId).forget(u.userId);
    await deliver(u.userId, 1);
    expect(await outcomes(u.userId)).toMatchObject([{ event: 'backchannel_logout_delivered', client_id: client.id, sid: sidOf(u.a) }]);
  });

  it('a try that was under way when the object stopped, the last one allowed, is not made again: the delivery is given up', async () => {
    const u = await account();
    const { client } = await rpClient(answers(500));
    await grant(u.userId, sidOf(u.a), client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    // As the last try leaves the row before its answer: counted, held for a minute.
    await sessionExec('UPDATE oauth_logout_outbox SET attempts = ?, next_at = ?', [LOGOUT_RETRY_S.length + 1, now() - 1], u.userId);
    await runDurableObjectAlarm(sessionsObject(u.userId));
    await vi.waitFor(async () => expect(await outbox(u.userId)).toEqual([]), { interval: 50 });
    expect(received).toHaveLength(1);
  });

  it(`tries at most ${LOGOUT_BATCH} at once; the rest follow at the next alarm, set at once`, async () => {
    const u = await account();
    let inFlight = 0;
    let most = 0;
    const slow: Rp = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 100));
      inFlight--;
      return new Response(null, { status: 204 });
    };
    for (let i = 0; i <= LOGOUT_BATCH; i++) await grant(u.userId, sidOf(u.a), (await rpClient(slow)).client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await runDurableObjectAlarm(sessionsObject(u.userId));
    await vi.waitFor(async () => expect((await outcomes(u.userId)).length).toBe(LOGOUT_BATCH + 1), { timeout: 5000, interval: 50 });
    expect(most).toBe(LOGOUT_BATCH);
    expect(received).toHaveLength(LOGOUT_BATCH + 1);
  });

  it('a fault of the gateway\'s own (config, keys, D1 unreachable) is a failed try: kept and tried again after the backoff, not lost', async () => {
    const u = await account();
    const { client } = await rpClient(answers(500));
    await grant(u.userId, sidOf(u.a), client.id);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, 1);
    await sessionExec('UPDATE oauth_logout_outbox SET next_at = ?', [now() - 1], u.userId);
    // The outbox's loop with a delivery that throws, as the Worker's does when D1 cannot answer.
    await runInDurableObject(sessionsObject(u.userId), (_instance, state) => deliverDueLogouts(state.storage, () => Promise.reject(new Error('D1 is unavailable')), now()));
    const [row] = await outbox(u.userId);
    expect(row).toMatchObject({ client_id: client.id, attempts: 2 });
    expect(row!.next_at - now()).toBeGreaterThan(LOGOUT_RETRY_S[1]! - 5);
    expect(received).toHaveLength(1);
  });
});
