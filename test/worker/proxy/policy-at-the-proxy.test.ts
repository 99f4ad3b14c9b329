/**
 * Route policies in the built-in proxy: the request facts come from the request itself (method,
 * path below the route, `CF-Connecting-IP`, `request.cf.country`); a refusal is a bare 403
 * `forbidden` that says nothing of the rules, while the request log line names the rule; and
 * `upstream_authorization = "assertion"` hands the origin the assertion as a bearer token.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../../src/index';
import { bearer, call, PUBLIC_URL, registerUser, uniqueEmail, type TestEnv } from '../support/helpers';
import { cookieSession, promote, proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const origin = recordingOrigin();
const env = proxyEnv(
  [
    {
      path: '/ops',
      origin: 'service:O',
      auth: 'required',
      policy: {
        allow: [{ roles: ['ops'] }, { roles: ['viewer'], method: ['GET', 'HEAD'], path: ['/reports/**'] }],
        deny: [{ path: ['/admin/**'], not: { roles: ['admin'] } }, { ip: ['198.51.100.0/24'] }],
      },
    },
    // Without request.cf (as in these tests) the country is unknown, and a country deny refuses.
    { path: '/geo', origin: 'service:O', auth: 'required', policy: { allow: [{ roles: ['ops'] }], deny: [{ country: ['RU'] }] } },
    { path: '/api', origin: 'service:O', auth: 'required', upstream_authorization: 'assertion' },
    { path: '/maybe', origin: 'service:O', auth: 'optional', upstream_authorization: 'assertion' },
  ],
  { O: origin },
);

/** A request through the Worker with the edge's `cf.country`. */
async function fromCountry(path: string, country: string, token: string, testEnv: TestEnv = env): Promise<Response> {
  const request = new Request(new URL(path, PUBLIC_URL), { headers: { ...bearer(token), 'cf-connecting-ip': '203.0.113.7' }, cf: { country } });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, testEnv as never, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

async function withRoles(roles: string[]): Promise<string> {
  const email = uniqueEmail('policy');
  await registerUser(email, undefined, env);
  return promote(env, email, { roles });
}

function requestLines() {
  const out = vi.spyOn(console, 'log');
  const err = vi.spyOn(console, 'error');
  const warn = vi.spyOn(console, 'warn');
  return () =>
    [...out.mock.calls, ...err.mock.calls, ...warn.mock.calls]
      .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
      .filter((l) => l.event === 'request');
}

afterEach(() => vi.restoreAllMocks());

describe('facts of a proxied request', () => {
  it('method and path below the route', async () => {
    const viewer = await withRoles(['viewer']);
    origin.seen.length = 0;
    expect((await call('/ops/reports/2026/q1', { env, headers: bearer(viewer) })).status).toBe(200);
    expect((await call('/ops/reports/2026', { env, method: 'POST', headers: bearer(viewer) })).status).toBe(403);
    expect((await call('/ops/deploy', { env, headers: bearer(viewer) })).status).toBe(403);
    // The glob is below the route: /ops itself is not /ops/reports.
    expect((await call('/reports/x', { env, headers: bearer(viewer) })).status).toBe(404);
    expect(origin.seen.map((s) => new URL(s.url).pathname)).toEqual(['/ops/reports/2026/q1']);
  });

  it('deny wins: a path denied without a role, whatever the case', async () => {
    const ops = await withRoles(['ops']);
    const admin = await withRoles(['ops', 'admin']);
    expect((await call('/ops/deploy', { env, headers: bearer(ops) })).status).toBe(200);
    expect((await call('/ops/admin/users', { env, headers: bearer(ops) })).status).toBe(403);
    expect((await call('/ops/ADMIN/users', { env, headers: bearer(ops) })).status).toBe(403);
    expect((await call('/ops/admin/users', { env, headers: bearer(admin) })).status).toBe(200);
  });

  it('the client IP is CF-Connecting-IP, never X-Forwarded-For', async () => {
    const ops = await withRoles(['ops']);
    expect((await call('/ops/x', { env, headers: { ...bearer(ops), 'cf-connecting-ip': '198.51.100.20' } })).status).toBe(403);
    expect((await call('/ops/x', { env, headers: { ...bearer(ops), 'x-forwarded-for': '198.51.100.20' } })).status).toBe(200);
  });

  it('the country is the edge\'s request.cf.country', async () => {
    const ops = await withRoles(['ops']);
    expect((await fromCountry('/geo/x', 'RU', ops)).status).toBe(403);
    expect((await fromCountry('/geo/x', 'DE', ops)).status).toBe(200);
    // No country from the edge: the deny cannot be ruled out, so it refuses.
    expect((await call('/geo/x', { env, headers: bearer(ops) })).status).toBe(403);
  });
});

describe('a refusal by policy', () => {
  it('tells the requester only "forbidden"; the request log line names the rule', async () => {
    const viewer = await withRoles(['viewer']);
    const lines = requestLines();
    const denied = await call('/ops/admin/x', { env, headers: bearer(viewer) });
    const unmatched = await call('/ops/deploy', { env, headers: bearer(viewer) });
    const allowed = await call('/ops/reports/x', { env, headers: bearer(viewer) });
    for (const r of [denied, unmatched]) {
      expect(r.status).toBe(403);
      const body = await r.text();
      expect(JSON.parse(body)).toEqual({ error: 'forbidden', error_description: 'Your account is not allowed on this route.' });
      expect(body).not.toMatch(/deny|allow\[|admin|viewer/);
    }
    expect(allowed.status).toBe(200);
    expect(lines().map((l) => [l.status, l.decision, l.policy_rule])).toEqual([
      [403, 'deny', 'deny[0]'],
      [403, 'deny', 'no allow matched'],
      [200, 'allow', 'allow[1]'],
    ]);
  });

  it('a route without a policy logs no policy rule', async () => {
    const user = await registerUser(undefined, undefined, env);
    const lines = requestLines();
    expect((await call('/api/x', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect(lines()[0]).not.toHaveProperty('policy_rule');
  });
});

describe('upstream_authorization = "assertion"', () => {
  it('a cookie session: the origin receives the assertion as a bearer token', async () => {
    const { cookies } = await cookieSession(env);
    origin.seen.length = 0;
    expect((await call('/api/items', { env, cookies })).status).toBe(200);
    const seen = origin.seen[0]!.headers;
    expect(seen['x-auth-assertion']).toMatch(/^ey/);
    expect(seen.authorization).toBe(`Bearer ${seen['x-auth-assertion']}`);
  });

  it('a bearer-token request: the client\'s Authorization (the gateway token) is replaced by the assertion', async () => {
    const user = await registerUser(undefined, undefined, env);
    origin.seen.length = 0;
    expect((await call('/api/items', { env, headers: bearer(user.access_token) })).status).toBe(200);
    const seen = origin.seen[0]!.headers;
    expect(seen.authorization).toBe(`Bearer ${seen['x-auth-assertion']}`);
    expect(seen.authorization).not.toContain(user.access_token);
  });

  it('an anonymous request on an optional route gets no Authorization', async () => {
    origin.seen.length = 0;
    expect((await call('/maybe/x', { env })).status).toBe(200);
    expect(origin.seen[0]!.headers.authorization).toBeUndefined();
    expect(origin.seen[0]!.headers['x-auth-assertion']).toBeUndefined();
  });

  it('without it, the origin gets no Authorization for a cookie session', async () => {
    const routes = proxyEnv([{ path: '/plain', origin: 'service:O', auth: 'required' }], { O: origin });
    const { cookies } = await cookieSession(routes);
    origin.seen.length = 0;
    expect((await call('/plain/x', { env: routes, cookies })).status).toBe(200);
    expect(origin.seen[0]!.headers.authorization).toBeUndefined();
    expect(origin.seen[0]!.headers['x-auth-assertion']).toMatch(/^ey/);
  });
});
