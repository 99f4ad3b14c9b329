/**
 * Metrics for dashboards (README "Metrics (Workers Analytics Engine)"): each request outcome
 * (the request log's decision) writes one data point to the `METRICS` dataset when it is bound,
 * with the documented fields; a dataset that fails costs the point, never the request; without
 * the binding nothing is attempted.
 *
 * Analytics Engine's local dataset (wrangler.toml binds it, so every worker test runs with it)
 * keeps nothing that could be read back, so the fields are checked with a recording binding: an
 * object implementing AnalyticsEngineDataset that keeps each point it is given.
 */
import { createExecutionContext, env as baseEnv, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../../src/index';
import { bearer, call, GOOD_PASSWORD, makeEnv, PUBLIC_URL, registerUser, uniqueEmail, type TestEnv } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

function recordingDataset() {
  const points: AnalyticsEngineDataPoint[] = [];
  const dataset: AnalyticsEngineDataset = { writeDataPoint: (point) => void points.push(point ?? {}) };
  return { dataset, points };
}

const ROUTES = [
  { path: '/app', origin: 'service:APP', auth: 'required' },
  { path: '/open', origin: 'service:APP', auth: 'public' },
  { host: 'wiki.example.org', path: '/', origin: 'service:APP', auth: 'public' },
];

function envWith(metrics: unknown, settings: Record<string, unknown> = {}): TestEnv {
  return makeEnv({ ROUTES: JSON.stringify(ROUTES), APP: recordingOrigin(), METRICS: metrics, ...settings });
}

/** A request as the Cloudflare edge hands it over: with `cf.country`. */
async function callFrom(country: string, url: string, env: TestEnv, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('cf-connecting-ip', '203.0.113.7');
  const request = new Request(new URL(url, PUBLIC_URL), { ...init, headers, redirect: 'manual', cf: { country } });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, env as never, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** A point's fields by their documented names (README's table). */
function fields(point: AnalyticsEngineDataPoint | undefined) {
  const [kind, route, decision, policy, method, country, signInMethod, signInOutcome] = point?.blobs ?? [];
  const [status, latencyMs, count] = point?.doubles ?? [];
  return { index: point?.indexes?.[0], kind, route, decision, policy, method, country, signInMethod, signInOutcome, status, latencyMs, count };
}

afterEach(() => vi.restoreAllMocks());

describe('without the METRICS binding', () => {
  // First in the file: a failed write is logged once per isolate, so a missing binding written
  // to anyway shows only while no write has failed yet.
  it('nothing is attempted, in either log mode', async () => {
    // The metrics module loaded (by a request with a binding), as in an isolate serving both.
    const { dataset, points } = recordingDataset();
    await call('/auth/health', { env: envWith(dataset) });
    expect(points).toHaveLength(1);
    const errors = vi.spyOn(console, 'error');
    for (const REQUEST_LOG of ['all', 'refusals']) {
      const env = envWith(undefined, { REQUEST_LOG });
      expect((await call('/open/x', { env })).status).toBe(200);
      expect((await call('/app/x', { env })).status).toBe(401);
      expect((await call('/auth/health', { env })).status).toBe(200);
      expect(errors.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('metrics') || l.includes('"status":500'))).toEqual([]);
    }
  });
});

describe('one data point per decision, with the documented fields', () => {
  it('a proxied request: its ROUTES entry as index and route, its policy, the decision, the country', async () => {
    const { dataset, points } = recordingDataset();
    const env = envWith(dataset);
    const user = await registerUser(undefined, undefined, envWith(undefined));
    points.length = 0;
    expect((await callFrom('DE', '/app/reports/7', env, { headers: bearer(user.access_token) })).status).toBe(200);
    expect(points).toHaveLength(1);
    expect(fields(points[0])).toMatchObject({ index: '/app', kind: 'proxy', route: '/app', decision: 'allow', policy: 'required', method: 'read', country: 'DE', signInMethod: '', signInOutcome: '', status: 200, count: 1 });
    expect(typeof fields(points[0]).latencyMs).toBe('number');
    // Refused: the same route, the refusal; an unsafe method is a write.
    expect((await callFrom('FR', '/app/reports/7', env, { method: 'POST' })).status).toBe(401);
    expect(fields(points[1])).toMatchObject({ index: '/app', kind: 'proxy', decision: 'deny', policy: 'required', method: 'write', country: 'FR', status: 401, count: 1 });
    expect(points).toHaveLength(2);
    // No user id, address, IP or path anywhere in a point.
    const text = JSON.stringify(points);
    for (const personal of [user.user.id, user.user.email, '203.0.113.7', '/reports/7']) expect(text).not.toContain(personal);
  });

  it('a route on a host of its own is named with its host, in the point and in the request log', async () => {
    const { dataset, points } = recordingDataset();
    const log = vi.spyOn(console, 'log');
    expect((await call('https://wiki.example.org/page', { env: envWith(dataset) })).status).toBe(200);
    expect(points).toHaveLength(1);
    expect(fields(points[0])).toMatchObject({ index: 'wiki.example.org/', kind: 'proxy', route: 'wiki.example.org/', decision: 'allow', policy: 'public' });
    const lines = log.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === 'request');
    expect(lines.map((l) => l.route)).toEqual(['wiki.example.org/']);
  });

  it('an index longer than Analytics Engine takes (96 bytes) is cut there; the route blob keeps it whole', async () => {
    const { dataset, points } = recordingDataset();
    const long = `/${'reports-'.repeat(15)}`;
    const env = makeEnv({ ROUTES: JSON.stringify([{ path: long, origin: 'service:APP', auth: 'public' }]), APP: recordingOrigin(), METRICS: dataset });
    expect((await call(`${long}/x`, { env })).status).toBe(200);
    expect(fields(points[0])).toMatchObject({ index: long.slice(0, 96), route: long, kind: 'proxy' });
    expect(points).toHaveLength(1);
  });

  it('a forward-auth answer is kind forward_auth, allowed and refused', async () => {
    const { dataset, points } = recordingDataset();
    const env = envWith(dataset);
    const user = await registerUser(undefined, undefined, envWith(undefined));
    expect((await call('/auth/verify', { env, headers: { ...bearer(user.access_token), 'x-forwarded-uri': '/app/x' } })).status).toBe(200);
    expect((await call('/auth/verify', { env, headers: { 'x-forwarded-uri': '/app/x' } })).status).toBe(401);
    expect(points.map(fields)).toMatchObject([
      { index: '/auth/verify', kind: 'forward_auth', route: '/auth/verify', decision: 'allow', policy: 'gateway', status: 200, count: 1 },
      { index: '/auth/verify', kind: 'forward_auth', route: '/auth/verify', decision: 'deny', policy: 'gateway', status: 401, count: 1 },
    ]);
  });

  it('a sign-in outcome is kind sign_in, with how the user signed in and what came of it', async () => {
    const { dataset, points } = recordingDataset();
    const env = envWith(dataset);
    const email = uniqueEmail('metrics');
    await registerUser(email, GOOD_PASSWORD, envWith(undefined));
    expect((await callFrom('NL', '/auth/login', env, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'wrong horse battery staple' }) })).status).toBe(401);
    expect((await callFrom('NL', '/auth/login', env, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: GOOD_PASSWORD }) })).status).toBe(200);
    expect(points.map(fields)).toMatchObject([
      { index: '/auth/login', kind: 'sign_in', route: '/auth/login', decision: 'deny', method: 'write', country: 'NL', signInMethod: 'password', signInOutcome: 'refused', status: 401, count: 1 },
      { index: '/auth/login', kind: 'sign_in', route: '/auth/login', decision: 'allow', method: 'write', country: 'NL', signInMethod: 'password', signInOutcome: 'session', status: 200, count: 1 },
    ]);
    expect(JSON.stringify(points)).not.toContain(email);
  });

  it('anything else the gateway answers is kind gateway, one point each', async () => {
    const { dataset, points } = recordingDataset();
    const env = envWith(dataset);
    await call('/auth/health', { env });
    await call('/.well-known/jwks.json', { env });
    await call('/auth/me', { env });
    expect(points.map(fields)).toMatchObject([
      { index: '/auth/health', kind: 'gateway', decision: 'allow', policy: 'gateway', status: 200 },
      { index: '/.well-known/jwks.json', kind: 'gateway', decision: 'allow', status: 200 },
      { index: '/auth/me', kind: 'gateway', decision: 'deny', status: 401 },
    ]);
  });

  it('with REQUEST_LOG = "refusals" an allowed request writes no log line but still its point', async () => {
    const { dataset, points } = recordingDataset();
    const log = vi.spyOn(console, 'log');
    expect((await call('/open/x', { env: envWith(dataset, { REQUEST_LOG: 'refusals' }) })).status).toBe(200);
    expect(log.mock.calls.filter((c) => String(c[0]).includes('"event":"request"'))).toEqual([]);
    expect(fields(points[0])).toMatchObject({ kind: 'proxy', route: '/open', decision: 'allow', status: 200 });
    expect(points).toHaveLength(1);
  });
});

describe('metrics never decide a request', () => {
  it('wrangler.toml binds a local dataset, and requests succeed with it', async () => {
    expect(typeof (baseEnv as TestEnv & { METRICS?: AnalyticsEngineDataset }).METRICS?.writeDataPoint).toBe('function');
    const env = makeEnv({ ROUTES: JSON.stringify(ROUTES), APP: recordingOrigin() });
    const user = await registerUser(undefined, undefined, env);
    expect((await call('/app/x', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/auth/verify', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } })).status).toBe(200);
  });

  it('a dataset that throws costs the point, never the request, and is logged once; refusals still refuse', async () => {
    const failing: AnalyticsEngineDataset = {
      writeDataPoint: () => {
        throw new Error('Analytics Engine unavailable');
      },
    };
    const env = envWith(failing);
    const errors = vi.spyOn(console, 'error');
    const user = await registerUser(undefined, undefined, envWith(undefined));
    expect((await call('/app/x', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/auth/verify', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } })).status).toBe(200);
    // Failing open for metrics only: a refusal is still a refusal.
    expect((await call('/app/x', { env })).status).toBe(401);
    expect((await call('/auth/verify', { env })).status).toBe(401);
    const failures = errors.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === 'metrics_write_failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ level: 'error', error: 'Error: Analytics Engine unavailable' });
  });

});
