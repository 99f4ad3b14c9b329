/**
 * Logout notices to origins (README "Revocation"): every way a gateway session ends owes each
 * distinct `logout_notify` target of ROUTES one signed logout token, written in the user's object
 * with the end, handed to the LOGOUT_NOTICES queue by the object's alarm and delivered by the
 * Worker's own queue consumer (the real local queue of the test pool); what the token says, and
 * what the origin package `@gatehouse/verify` accepts; a failing origin retried with growing delays
 * and then given up, each outcome audited; a sign-out that never waits for an origin; the setting's
 * validation.
 *
 * The origins answer from this file (global `fetch` is replaced for their origins only). The
 * object and the consumer run with the pool's bindings (vitest.config.ts): requests here use its
 * signing key and PUBLIC_URL too; ROUTES reach the object with each session's end, and the
 * consumer reads them from the pool's env, which gets this file's.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { createLocalJWKSet, decodeJwt, importJWK, jwtVerify, SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NOTICE_DEADLINE_MS, NOTICE_DEAD_LETTER_QUEUE, NOTICE_QUEUE, NOTICE_RETRY_S } from '../../../src/auth/logout-notices';
import { parseConfig } from '../../../src/config/load';
import { logoutNoticeTargets, type LogoutNoticeTarget } from '../../../src/config/routes-schema';
import worker from '../../../src/index';
import { GatehouseAssertionError, verifyGatehouseLogoutToken } from '../../../packages/verify/src/index';
import { handOffDueNotices, type LogoutNotice } from '../../../src/storage/logout-notices';
import type { UserSessions } from '../../../src/storage/user-sessions';
import { bearer, call, GOOD_PASSWORD, makeEnv, PUBLIC_URL, seedUser, signIn, type TestEnv } from '../support/helpers';
import { mailEnv, uniqueEmail } from '../support/mail';
import { ok, sessionEndings, sidOf, twoSessions } from '../support/session-endings';
import { sessionRows, sessionsObject } from '../support/user-sessions-store';

const APP_A = 'https://app-a.notify.test';
const APP_B = 'https://app-b.notify.test';
const NOTIFY_A = `${APP_A}/backchannel-logout`;
const NOTIFY_B = 'https://hooks-b.notify.test';
const ROUTES = [
  { path: '/a', origin: APP_A, auth: 'required', logout_notify: `${APP_A}/backchannel-logout` },
  // The same target again (the same origin under another prefix): told once.
  { path: '/a-too', origin: `${APP_A}/v2`, auth: 'required', logout_notify: `${APP_A}/backchannel-logout` },
  { path: '/b', origin: APP_B, audience: 'app-b', auth: 'optional', logout_notify: `${NOTIFY_B}/gatehouse/logout?tenant=7` },
  { path: '/c', origin: 'https://app-c.notify.test', auth: 'required' },
];
/** Each target, with `aud` of its token (the target itself) and the route's audience (its assertions'). */
const TARGETS = [
  { origin: APP_A, route: '/a', audience: NOTIFY_A, routeAudience: APP_A },
  { origin: NOTIFY_B, route: '/b', audience: `${NOTIFY_B}/gatehouse/logout?tenant=7`, routeAudience: 'app-b' },
];

/** What the requests pass the object with each end: the distinct targets of ROUTES. */
let NOTIFY: readonly LogoutNoticeTarget[] = [];
const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', SIGNING_KEYS: env.SIGNING_KEYS, PUBLIC_URL: env.PUBLIC_URL, ROUTES: JSON.stringify(ROUTES) });
const now = () => Math.floor(Date.now() / 1000);
// The queue's consumer runs with the pool's env, as a deployment's runs with the deployment's
// settings: it tells only the targets its ROUTES name, so the pool's env gets this file's.
Object.assign(env, { ROUTES: JSON.stringify(ROUTES) });
{
  const loaded = parseConfig(e);
  if (loaded.ok) NOTIFY = logoutNoticeTargets(loaded.config.ROUTES);
}

// ---- origins on a fake network ----

type Origin = (request: Request) => Promise<Response> | Response;
const origins = new Map<string, Origin>();
let received: { origin: string; url: string; method: string; contentType: string | null; body: string }[] = [];
const realFetch = globalThis.fetch;

beforeEach(() => {
  received = [];
  const fakeFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const origin = new URL(request.url).origin;
    const answer = origins.get(origin);
    if (!answer) return realFetch(input, init);
    if (origin !== PUBLIC_URL) received.push({ origin, url: request.url, method: request.method, contentType: request.headers.get('content-type'), body: new TextDecoder().decode(await request.clone().arrayBuffer()) });
    const response = await answer(request);
    // Like a real fetch: a redirect is followed unless the caller asked for `manual`.
    const location = response.headers.get('location');
    if (request.redirect === 'manual' || location === null || response.status < 300 || response.status > 399) return response;
    return fakeFetch(new URL(location, request.url), { method: 'GET', signal: request.signal });
  };
  vi.stubGlobal('fetch', fakeFetch);
  for (const t of TARGETS) origins.set(t.origin, answers(204));
  // The gateway itself, for the origin helper's JWKS.
  origins.set(PUBLIC_URL, (request) => call(new URL(request.url).pathname, { env: e }));
});
afterEach(() => {
  vi.unstubAllGlobals();
  origins.clear();
});

const answers = (status: number): Origin => () => new Response(null, { status });
/** Never answers; gives up only when the caller aborts. */
const hangs: Origin = (request) => new Promise((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason)));

interface Outcome {
  event: string;
  route: string;
  sid: string;
  attempt: number;
  status?: number | string;
  retry_in_s?: number;
  reason?: string;
}

/** The audited outcomes for the user, oldest first. */
async function outcomes(userId: string): Promise<Outcome[]> {
  const { results } = await env.DB.prepare("SELECT event, detail FROM auth_events WHERE user_id = ? AND event LIKE 'logout_notice_%' ORDER BY id").bind(userId).all<{ event: string; detail: string }>();
  return results.map((r) => ({ event: r.event, ...(JSON.parse(r.detail) as Omit<Outcome, 'event'>) }));
}

const owed = (userId: string) => sessionRows<{ session_id: string; target: string; route: string }>('SELECT session_id, target, route FROM origin_logout_notices ORDER BY id', [], userId);

/** Runs the user's alarm now (the hand-off to the queue) and waits until `n` outcomes are audited by the queue's consumer. */
async function deliver(userId: string, n: number) {
  await runDurableObjectAlarm(sessionsObject(userId));
  await vi.waitFor(async () => expect((await outcomes(userId)).length).toBe(n), { timeout: NOTICE_DEADLINE_MS + 5000, interval: 50 });
}

const account = () => twoSessions(e, 'notice');


// ---- every way a session ends ----

const endings = sessionEndings(e);

describe('every way a session ends owes each distinct logout_notify target one notice, delivered through the queue', () => {
  it.each(endings)('$name', async (ending) => {
    const u = await account();
    await ending.end(u);
    const ended = [sidOf(u.a), ...(ending.endsAll ? [sidOf(u.b)] : [])];
    const expected = ended.flatMap((sid) => TARGETS.map((t) => ({ sid, route: t.route }))).sort((x, y) => `${x.sid}${x.route}`.localeCompare(`${y.sid}${y.route}`));

    await deliver(u.userId, expected.length);
    const audited = await outcomes(u.userId);
    expect(audited.map(({ sid, route }) => ({ sid, route })).sort((x, y) => `${x.sid}${x.route}`.localeCompare(`${y.sid}${y.route}`))).toEqual(expected);
    expect(audited.every((o) => o.event === 'logout_notice_delivered' && o.attempt === 1 && o.status === 204)).toBe(true);
    // One POST per target and ended session; the queue has them, the object forgot them.
    expect(received.map((r) => r.origin).sort()).toEqual(ended.flatMap(() => TARGETS.map((t) => t.origin)).sort());
    expect(await owed(u.userId)).toEqual([]);
  });

  it('a session ended before owes nothing more when ended "again"; a gateway without logout_notify routes owes nothing', async () => {
    const u = await account();
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, TARGETS.length);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    expect(await owed(u.userId)).toEqual([]);

    const plain = makeEnv({ SIGNING_KEYS: env.SIGNING_KEYS, PUBLIC_URL: env.PUBLIC_URL, ROUTES: JSON.stringify([ROUTES[3]]) });
    const v = await seedUser({ email: uniqueEmail('plain'), verified: true });
    const t = await signIn(v.email, GOOD_PASSWORD, plain);
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(t.access_token), env: plain }));
    expect(await owed(v.id)).toEqual([]);
  });
});

// ---- the logout token ----

async function jwks(): Promise<JSONWebKeySet> {
  return (await (await call('/.well-known/jwks.json', { env: e })).json()) as JSONWebKeySet;
}

describe('the notice', () => {
  it("is POSTed form-encoded to the target as it is written, a logout token that verifies against the gateway's JWKS: typed logout+jwt, the target as its audience, exactly iss, aud, iat, exp, jti, sub, sid and the event; no nonce", async () => {
    const u = await account();
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, TARGETS.length);
    expect(received.map((r) => r.url).sort()).toEqual([`${APP_A}/backchannel-logout`, `${NOTIFY_B}/gatehouse/logout?tenant=7`]);
    const keys = createLocalJWKSet(await jwks());
    const jtis = new Set<string>();
    for (const t of TARGETS) {
      const request = received.find((r) => r.origin === t.origin)!;
      expect(request.method).toBe('POST');
      expect(request.contentType).toBe('application/x-www-form-urlencoded');
      const form = new URLSearchParams(request.body);
      expect([...form.keys()]).toEqual(['logout_token']);
      const { payload, protectedHeader } = await jwtVerify(form.get('logout_token')!, keys, { issuer: PUBLIC_URL, audience: t.audience, typ: 'logout+jwt' });
      expect(protectedHeader).toEqual({ alg: 'ES256', kid: 'test-object-key', typ: 'logout+jwt' });
      expect(Object.keys(payload).sort()).toEqual(['aud', 'events', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub']);
      expect(payload).toMatchObject({ iss: PUBLIC_URL, aud: t.audience, sub: u.userId, sid: sidOf(u.a), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
      expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(120);
      expect(Math.abs(payload.iat! - now())).toBeLessThanOrEqual(5);
      jtis.add(payload.jti!);
    }
    expect(jtis.size).toBe(TARGETS.length);
  });

  it("cannot pass for one of the route's assertions: its aud is the target it is sent to, never the audience the route's assertions carry", async () => {
    const u = await account();
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, TARGETS.length);
    const keys = createLocalJWKSet(await jwks());
    for (const t of TARGETS) {
      const request = received.find((r) => r.origin === t.origin)!;
      const token = new URLSearchParams(request.body).get('logout_token')!;
      // What an origin checks of an assertion where no helper checks `typ` for it (README's Python and Go).
      await expect(jwtVerify(token, keys, { issuer: PUBLIC_URL, audience: t.routeAudience, requiredClaims: ['sub', 'sid', 'iat', 'exp'] })).rejects.toThrow(/aud/);
      await expect(jwtVerify(token, keys, { issuer: PUBLIC_URL, audience: t.audience, typ: 'logout+jwt' })).resolves.toBeTruthy();
    }
  });

  it('the sid is the one the origin\'s assertions carried for that session', async () => {
    const u = await account();
    let assertion = '';
    origins.set(APP_A, (request) => {
      if (request.method === 'GET') assertion = request.headers.get('x-auth-assertion') ?? '';
      return new Response(null, { status: 204 });
    });
    await call('/a/page', { headers: bearer(u.a.access_token), env: e });
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, TARGETS.length);
    const notice = received.find((r) => r.origin === APP_A && r.method === 'POST')!;
    const token = new URLSearchParams(notice.body).get('logout_token')!;
    expect(decodeJwt(token)).toMatchObject({ sid: decodeJwt(assertion).sid, aud: NOTIFY_A, sub: decodeJwt(assertion).sub });
  });
});

// ---- the origin helper ----

describe('@gatehouse/verify: verifyGatehouseLogoutToken, as a Node origin uses it', () => {
  const jwksUrl = `${PUBLIC_URL}/.well-known/jwks.json`;

  async function notice(u: Awaited<ReturnType<typeof account>>) {
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    await deliver(u.userId, TARGETS.length);
    return received.find((r) => r.origin === APP_A)!;
  }

  it('accepts the notice as the origin receives it (the request, or its token), and returns the session to drop and the jti to check once', async () => {
    const u = await account();
    const r = await notice(u);
    const request = new Request(r.url, { method: 'POST', headers: { 'content-type': r.contentType! }, body: r.body });
    const logout = await verifyGatehouseLogoutToken(request, { jwksUrl, audience: NOTIFY_A });
    expect(logout).toMatchObject({ userId: u.userId, sessionId: sidOf(u.a) });
    expect(logout.jti).toBe(decodeJwt(new URLSearchParams(r.body).get('logout_token')!).jti);
    // Two minutes, and the default clock tolerance during which the helper still accepts it.
    expect(logout.expiresAt - logout.issuedAt).toBe(120 + 30);
    expect(await verifyGatehouseLogoutToken(new URLSearchParams(r.body).get('logout_token')!, { jwksUrl, audience: NOTIFY_A })).toMatchObject({ sessionId: sidOf(u.a) });
  });

  it("refuses another origin's notice, an assertion, a token with a nonce, without the event, expired, or signed by another key", async () => {
    const u = await account();
    const r = await notice(u);
    const token = new URLSearchParams(r.body).get('logout_token')!;
    await expect(verifyGatehouseLogoutToken(token, { jwksUrl, audience: TARGETS[1]!.audience })).rejects.toThrow(/ERR_JWT_CLAIM_VALIDATION_FAILED/);

    const [key] = (JSON.parse(String(env.SIGNING_KEYS)) as { keys: JWK[] }).keys;
    const privateKey = await importJWK(key!, 'ES256');
    const t = now();
    const base = { sid: sidOf(u.a), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } };
    const sign = (claims: Record<string, unknown>, typ = 'logout+jwt', k: CryptoKey | Uint8Array = privateKey, iat = t) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key!.kid!, typ }).setIssuer(PUBLIC_URL).setAudience(NOTIFY_A).setSubject(u.userId).setJti(crypto.randomUUID()).setIssuedAt(iat).setExpirationTime(iat + 120).sign(k);
    const refuse = (tok: string) => expect(verifyGatehouseLogoutToken(tok, { jwksUrl, audience: NOTIFY_A })).rejects.toBeInstanceOf(GatehouseAssertionError);
    // The control: the same signing accepted.
    await expect(verifyGatehouseLogoutToken(await sign(base), { jwksUrl, audience: NOTIFY_A })).resolves.toMatchObject({ sessionId: sidOf(u.a) });
    await refuse(await sign(base, 'JWT'));
    await refuse(await sign({ ...base, nonce: 'n' }));
    await refuse(await sign({ sid: base.sid }));
    await refuse(await sign({ ...base, events: { 'https://example.org/other-event': {} } }));
    await refuse(await sign(base, 'logout+jwt', privateKey, t - 600));
    const { privateKey: stranger } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as CryptoKeyPair;
    await refuse(await sign(base, 'logout+jwt', stranger));
  });

  it('never accepts a token past the expiresAt it returns, the moment until which its jti must be kept (clock tolerance included)', async () => {
    const u = await account();
    const [key] = (JSON.parse(String(env.SIGNING_KEYS)) as { keys: JWK[] }).keys;
    const privateKey = await importJWK(key!, 'ES256');
    // Within the tolerance: signed 125 s ago, its exp 5 s ago.
    const iat = now() - 125;
    const token = await new SignJWT({ sid: sidOf(u.a), events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
      .setProtectedHeader({ alg: 'ES256', kid: key!.kid!, typ: 'logout+jwt' }).setIssuer(PUBLIC_URL).setAudience(NOTIFY_A).setSubject(u.userId)
      .setJti(crypto.randomUUID()).setIssuedAt(iat).setExpirationTime(iat + 120).sign(privateKey);
    const accepted = await verifyGatehouseLogoutToken(token, { jwksUrl, audience: NOTIFY_A });
    // An origin that forgets the jti at expiresAt must not see the token accepted again after that.
    expect(accepted.expiresAt).toBeGreaterThan(now());
    expect(accepted.expiresAt).toBe(iat + 120 + 30);
    expect((await verifyGatehouseLogoutToken(token, { jwksUrl, audience: NOTIFY_A, clockTolerance: 2 }).catch((e: unknown) => e))).toBeInstanceOf(GatehouseAssertionError);
    const tolerant = await verifyGatehouseLogoutToken(token, { jwksUrl, audience: NOTIFY_A, clockTolerance: 60 });
    expect(tolerant.expiresAt).toBe(iat + 120 + 60);
  });

  it('refuses a form post larger than a notice without reading it whole (the endpoint is open to anyone)', async () => {
    let pulled = 0;
    const chunk = new TextEncoder().encode(`logout_token=${'a'.repeat(64 * 1024 - 13)}`);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // 16 MiB on offer, 64 KiB at a time.
        if (pulled >= 256) return controller.close();
        pulled += 1;
        controller.enqueue(chunk);
      },
    });
    const request = new Request(NOTIFY_A, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    await expect(verifyGatehouseLogoutToken(request, { jwksUrl, audience: NOTIFY_A })).rejects.toThrow(/too large/);
    expect(pulled).toBeLessThan(4);
  });

  it('refuses a request that is not a form post of logout_token', async () => {
    const opts = { jwksUrl, audience: NOTIFY_A };
    await expect(verifyGatehouseLogoutToken(new Request(APP_A, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }), opts)).rejects.toThrow(/POST of application\/x-www-form-urlencoded/);
    await expect(verifyGatehouseLogoutToken(new Request(APP_A, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=1' }), opts)).rejects.toThrow(/no logout_token/);
  });
});

// ---- failures, retries, giving up ----

/**
 * Runs the Worker's queue handler on one message, as the queue delivers its `attempts`-th try.
 * The pool's result names the messages retried but not their delays: `retryMessages` here carries them.
 */
async function consume(body: LogoutNotice, attempts: number, queue = NOTICE_QUEUE, workerEnv: TestEnv = e) {
  const batch = createMessageBatch(queue, [{ id: `msg-${attempts}`, timestamp: new Date(), attempts, body }]);
  const [message] = batch.messages;
  const retry = vi.spyOn(message!, 'retry');
  const ctx = createExecutionContext();
  await worker.queue(batch, workerEnv);
  const result = await getQueueResult(batch, ctx);
  const delays = retry.mock.calls.map(([options]) => options?.delaySeconds);
  return { ...result, retryMessages: result.retryMessages.map((m, i) => ({ ...m, delaySeconds: delays[i] })) };
}

/** The file's env with one more route, told at `target`: the consumer tells only targets ROUTES names. */
const withTarget = (target: string): TestEnv => ({ ...e, ROUTES: JSON.stringify([...ROUTES, { path: '/svc', origin: 'https://svc.notify.test', auth: 'required', logout_notify: target }]) });

describe('an origin that fails is tried again with growing delays, then given up; every outcome audited', () => {
  it.each([
    ['answers 500', answers(500), 500],
    ['cannot be reached', () => Promise.reject(new TypeError('connection refused')), 'unreachable'],
    ['redirects (never followed)', () => new Response(null, { status: 307, headers: { location: 'https://elsewhere.notify.test/' } }), 307],
  ] as const)('%s', async (_name, answer, status) => {
    // Where the redirect points: an origin that would say 204.
    origins.set('https://elsewhere.notify.test', answers(204));
    origins.set(APP_A, answer);
    const user = await seedUser({ email: uniqueEmail('failing') });
    const body: LogoutNotice = { sub: user.id, sid: 'sid-failing', target: `${APP_A}/backchannel-logout`, route: '/a' };
    for (let attempt = 1; attempt <= NOTICE_RETRY_S.length; attempt++) {
      const result = await consume(body, attempt);
      expect(result.retryMessages).toEqual([{ msgId: `msg-${attempt}`, delaySeconds: NOTICE_RETRY_S[attempt - 1] }]);
      expect(result.explicitAcks).toEqual([]);
    }
    const last = await consume(body, NOTICE_RETRY_S.length + 1);
    expect(last.retryMessages).toEqual([]);
    expect(last.explicitAcks).toEqual([`msg-${NOTICE_RETRY_S.length + 1}`]);
    expect(await outcomes(user.id)).toEqual([
      ...NOTICE_RETRY_S.map((retry, i) => ({ event: 'logout_notice_failed', route: '/a', sid: 'sid-failing', attempt: i + 1, status, retry_in_s: retry })),
      { event: 'logout_notice_abandoned', route: '/a', sid: 'sid-failing', attempt: NOTICE_RETRY_S.length + 1, status },
    ]);
    expect(received.map((r) => r.origin)).toEqual(Array(NOTICE_RETRY_S.length + 1).fill(APP_A));
    // Growing, and each within the queue's 12-hour limit.
    expect(NOTICE_RETRY_S.every((s, i) => s <= 43_200 && (i === 0 || s > NOTICE_RETRY_S[i - 1]!))).toBe(true);
  });

  it(`one that does not answer is given up after ${NOTICE_DEADLINE_MS / 1000} s, a failed try`, async () => {
    origins.set(APP_A, hangs);
    const user = await seedUser({ email: uniqueEmail('hanging') });
    const started = Date.now();
    const result = await consume({ sub: user.id, sid: 'sid-hanging', target: `${APP_A}/backchannel-logout`, route: '/a' }, 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(NOTICE_DEADLINE_MS - 1000);
    expect(result.retryMessages).toEqual([{ msgId: 'msg-1', delaySeconds: NOTICE_RETRY_S[0] }]);
    expect(await outcomes(user.id)).toEqual([{ event: 'logout_notice_failed', route: '/a', sid: 'sid-hanging', attempt: 1, status: 'timeout', retry_in_s: NOTICE_RETRY_S[0] }]);
  }, 20_000);

  it('one that recovers is told on its next try', async () => {
    let status = 503;
    origins.set(APP_A, () => new Response(null, { status }));
    const user = await seedUser({ email: uniqueEmail('recovering') });
    const body: LogoutNotice = { sub: user.id, sid: 'sid-recovering', target: `${APP_A}/backchannel-logout`, route: '/a' };
    await consume(body, 1);
    status = 200;
    expect((await consume(body, 2)).explicitAcks).toEqual(['msg-2']);
    expect((await outcomes(user.id)).map((o) => [o.event, o.attempt, o.status])).toEqual([
      ['logout_notice_failed', 1, 503],
      ['logout_notice_delivered', 2, 200],
    ]);
  });

  it('a target no longer allowed (plain http in production) is given up at once, audited, nothing sent; a missing service binding is a failed try', async () => {
    const user = await seedUser({ email: uniqueEmail('not-allowed') });
    const http = await consume({ sub: user.id, sid: 'sid-http', target: 'http://app-a.notify.test/logout', route: '/a' }, 1);
    expect(http.explicitAcks).toEqual(['msg-1']);
    const binding = await consume({ sub: user.id, sid: 'sid-binding', target: 'service:NO_SUCH_BINDING/logout', route: '/svc' }, 1, NOTICE_QUEUE, withTarget('service:NO_SUCH_BINDING/logout'));
    expect(binding.retryMessages).toEqual([{ msgId: 'msg-1', delaySeconds: NOTICE_RETRY_S[0] }]);
    expect(await outcomes(user.id)).toEqual([
      { event: 'logout_notice_abandoned', route: '/a', sid: 'sid-http', attempt: 1, reason: 'target_not_allowed' },
      { event: 'logout_notice_failed', route: '/svc', sid: 'sid-binding', attempt: 1, status: 'no_binding', retry_in_s: NOTICE_RETRY_S[0] },
    ]);
    expect(received).toEqual([]);
  });

  it('a notice for a target ROUTES no longer names (removed since it was owed, or never there) is given up at once, audited, nothing sent', async () => {
    const gone = 'https://retired.notify.test';
    origins.set(gone, answers(204));
    const user = await seedUser({ email: uniqueEmail('retired') });
    const result = await consume({ sub: user.id, sid: 'sid-retired', target: `${gone}/backchannel-logout`, route: '/retired' }, 1);
    expect(result.explicitAcks).toEqual(['msg-1']);
    expect(result.retryMessages).toEqual([]);
    expect(await outcomes(user.id)).toEqual([{ event: 'logout_notice_abandoned', route: '/retired', sid: 'sid-retired', attempt: 1, reason: 'target_not_allowed' }]);
    expect(received).toEqual([]);
  });

  it("a fault of the gateway's own (its config cannot load) is a failed try, audited as such and tried again, not lost", async () => {
    const user = await seedUser({ email: uniqueEmail('gateway-fault') });
    const broken = makeEnv({ PUBLIC_URL: env.PUBLIC_URL, SIGNING_KEYS: undefined });
    const result = await consume({ sub: user.id, sid: 'sid-fault', target: `${APP_A}/backchannel-logout`, route: '/a' }, 1, NOTICE_QUEUE, broken);
    expect(result.retryMessages).toEqual([{ msgId: 'msg-1', delaySeconds: NOTICE_RETRY_S[0] }]);
    expect(await outcomes(user.id)).toEqual([{ event: 'logout_notice_failed', route: '/a', sid: 'sid-fault', attempt: 1, status: 'gateway_error', retry_in_s: NOTICE_RETRY_S[0] }]);
    expect(received).toEqual([]);
  });

  it('a service binding target is told through its binding, at its path', async () => {
    const seen: Request[] = [];
    const binding = { fetch: async (input: RequestInfo | URL, init?: RequestInit) => { seen.push(new Request(input, init)); return new Response(null, { status: 204 }); } };
    const user = await seedUser({ email: uniqueEmail('service') });
    const result = await consume({ sub: user.id, sid: 'sid-svc', target: 'service:NOTICE_ORIGIN/hooks/logout', route: '/svc' }, 1, NOTICE_QUEUE, { ...withTarget('service:NOTICE_ORIGIN/hooks/logout'), NOTICE_ORIGIN: binding });
    expect(result.explicitAcks).toEqual(['msg-1']);
    expect(seen.map((r) => [r.method, r.url])).toEqual([['POST', `${PUBLIC_URL}/hooks/logout`]]);
    expect(decodeJwt(new URLSearchParams(await seen[0]!.text()).get('logout_token')!)).toMatchObject({ aud: 'service:NOTICE_ORIGIN/hooks/logout', sid: 'sid-svc' });
    expect(received).toEqual([]);
  });

  it('what the queue gave up on (the dead-letter queue) is audited as abandoned; a retry past the last after a failing consumer too', async () => {
    const user = await seedUser({ email: uniqueEmail('dead') });
    const body: LogoutNotice = { sub: user.id, sid: 'sid-dead', target: `${APP_A}/backchannel-logout`, route: '/a' };
    expect((await consume(body, 11, NOTICE_DEAD_LETTER_QUEUE)).explicitAcks).toEqual(['msg-11']);
    expect((await consume(body, NOTICE_RETRY_S.length + 2)).explicitAcks).toEqual([`msg-${NOTICE_RETRY_S.length + 2}`]);
    expect(await outcomes(user.id)).toEqual([
      { event: 'logout_notice_abandoned', route: '/a', sid: 'sid-dead', attempt: 11, reason: 'dead_letter' },
      { event: 'logout_notice_abandoned', route: '/a', sid: 'sid-dead', attempt: NOTICE_RETRY_S.length + 2, reason: 'attempts' },
    ]);
    expect(received).toEqual([]);
  });
});

// ---- durability and a sign-out that never waits ----

describe('a sign-out never waits for an origin, and a notice is never lost', () => {
  it('answers while the origin hangs; the delivery fails later, in the queue consumer', async () => {
    origins.set(APP_A, hangs);
    const u = await account();
    const started = Date.now();
    await ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e }));
    expect(Date.now() - started).toBeLessThan(NOTICE_DEADLINE_MS - 2000);
    await runDurableObjectAlarm(sessionsObject(u.userId));
    await vi.waitFor(async () => expect((await outcomes(u.userId)).map((o) => [o.route, o.event, o.status]).sort()).toEqual([['/a', 'logout_notice_failed', 'timeout'], ['/b', 'logout_notice_delivered', 204]]), { timeout: NOTICE_DEADLINE_MS + 5000, interval: 100 });
  }, 20_000);

  it('owed in the object the moment the session ends (one transaction); a queue that refuses keeps them there, tried again after a growing delay; the next hand-off sends them', async () => {
    const u = await account();
    const failing = { send: () => Promise.reject(new Error('queue unavailable')), sendBatch: () => Promise.reject(new Error('queue unavailable')) } as unknown as Queue<LogoutNotice>;
    // In the object, with no chance for its alarm to run between the end and the look.
    const owedAtEnd = await runInDurableObject(sessionsObject(u.userId), async (instance: UserSessions, state) => {
      await instance.end(u.userId, [sidOf(u.a)], now(), NOTIFY);
      const rows = state.storage.sql.exec<{ session_id: string; target: string; route: string }>('SELECT session_id, target, route FROM origin_logout_notices ORDER BY id').toArray();
      await handOffDueNotices(state.storage, failing, now());
      return rows;
    });
    expect(owedAtEnd).toEqual(NOTIFY.map((n) => ({ session_id: sidOf(u.a), ...n })));
    const rows = await sessionRows<{ handoffs: number; next_at: number }>('SELECT handoffs, next_at FROM origin_logout_notices', [], u.userId);
    expect(rows).toHaveLength(TARGETS.length);
    expect(rows.every((r) => r.handoffs === 1 && r.next_at > now() + 5)).toBe(true);
    await runInDurableObject(sessionsObject(u.userId), (_i, state) => handOffDueNotices(state.storage, undefined, now() + 3600));
    expect((await sessionRows<{ handoffs: number }>('SELECT handoffs FROM origin_logout_notices', [], u.userId)).every((r) => r.handoffs === 2)).toBe(true);
    const sent: unknown[] = [];
    const queue = { sendBatch: async (batch: Iterable<MessageSendRequest<LogoutNotice>>) => { sent.push(...[...batch].map((m) => m.body)); } } as unknown as Queue<LogoutNotice>;
    await runInDurableObject(sessionsObject(u.userId), (_i, state) => handOffDueNotices(state.storage, queue, now() + 7200));
    expect(sent).toHaveLength(TARGETS.length);
    expect(await owed(u.userId)).toEqual([]);
  });

  it('the notices owed outlive the account\'s deletion (the object is wiped but for them), with their alarm set', async () => {
    const u = await account();
    const after = await runInDurableObject(sessionsObject(u.userId), async (instance: UserSessions, state) => {
      await instance.forget(u.userId, NOTIFY);
      return {
        sessions: state.storage.sql.exec('SELECT id FROM sessions').toArray(),
        owed: state.storage.sql.exec<{ session_id: string }>('SELECT session_id FROM origin_logout_notices').toArray().map((r) => r.session_id).sort(),
        alarm: await state.storage.getAlarm(),
      };
    });
    expect(after.sessions).toEqual([]);
    expect(after.owed).toEqual([sidOf(u.a), sidOf(u.a), sidOf(u.b), sidOf(u.b)].sort());
    expect(after.alarm).not.toBeNull();
    expect(after.alarm! / 1000).toBeLessThanOrEqual(now() + 1);
  });
});

// ---- the setting ----

describe('logout_notify in ROUTES', () => {
  const base = { SIGNING_KEYS: env.SIGNING_KEYS, PUBLIC_URL: env.PUBLIC_URL, LOGOUT_NOTICES: env.LOGOUT_NOTICES };
  const route = (logout_notify: unknown, extra: Record<string, unknown> = {}) => ({ path: '/x', origin: 'https://x.notify.test', auth: 'required', logout_notify, ...extra });
  const parse = (routes: unknown[], overrides: Record<string, unknown> = {}) => parseConfig({ ...base, ROUTES: JSON.stringify(routes), ...overrides });

  it.each([
    ['https://x.notify.test/logout'],
    ['https://x.notify.test:8443/hooks/logout?tenant=1'],
    ['service:ORIGIN'],
    ['service:ORIGIN/hooks/logout'],
  ])('accepts %s', (target) => {
    expect(parse([route(target)]).ok).toBe(true);
  });

  it.each([
    ['plain http in production', 'http://x.notify.test/logout', /logout_notify must use https/],
    ['plain http to localhost in production', 'http://localhost:3000/logout', /logout_notify must use https/],
    ['credentials', 'https://user:pw@x.notify.test/logout', /logout_notify must be an https URL/],
    ['a fragment', 'https://x.notify.test/logout#x', /logout_notify must be an https URL/],
    ['another scheme', 'ftp://x.notify.test/logout', /logout_notify must be an https URL/],
    ['a bad binding name', 'service:9-bad', /logout_notify must be an https URL/],
    ['not text', 42, /logout_notify must be a string/],
  ])('refuses %s', (_name, target, message) => {
    const r = parse([route(target)]);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.setting).toBe('ROUTES');
      expect(r.error.message).toMatch(message);
    }
  });

  it('accepts plain http to a loopback host in development only, never another host', () => {
    expect(parse([route('http://localhost:3000/logout')], { ENVIRONMENT: 'development' }).ok).toBe(true);
    expect(parse([route('http://127.0.0.1:3000/logout')], { ENVIRONMENT: 'development' }).ok).toBe(true);
    expect(parse([route('http://x.notify.test/logout')], { ENVIRONMENT: 'development' }).ok).toBe(false);
  });

  it("accepts one target for routes of different audiences (the notice's aud is its target, not a route's audience)", () => {
    expect(parse([route('https://x.notify.test/logout'), route('https://x.notify.test/logout', { path: '/y', audience: 'other' })]).ok).toBe(true);
    expect(parse([route('https://x.notify.test/logout'), route('https://x.notify.test/logout', { path: '/y' })]).ok).toBe(true);
  });

  it('needs the LOGOUT_NOTICES queue binding', () => {
    const r = parse([route('https://x.notify.test/logout')], { LOGOUT_NOTICES: undefined });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.setting).toBe('LOGOUT_NOTICES');
    expect(parse([{ path: '/x', origin: 'https://x.notify.test', auth: 'required' }], { LOGOUT_NOTICES: undefined }).ok).toBe(true);
  });
});
