/**
 * REQUEST_LOG: `all` (the default) writes one `request` line per request;
 * `refusals` writes lines only for requests not allowed (deny, invalid, rate_limited, error),
 * 5xx included. And the request id without `cf-ray`: unique per request, cheap.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bearer, call, makeEnv, registerUser } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

type Line = Record<string, unknown>;

function requestLines() {
  const spies = [vi.spyOn(console, 'log'), vi.spyOn(console, 'error'), vi.spyOn(console, 'warn')];
  return () =>
    spies
      .flatMap((s) => s.mock.calls.map((c) => String(c[0])))
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.event === 'request');
}

afterEach(() => vi.restoreAllMocks());

const routes = (extra: Record<string, unknown> = {}) =>
  makeEnv({
    ROUTES: JSON.stringify([{ path: '/open', origin: 'service:APP', auth: 'public' }, { path: '/app', origin: 'service:APP', auth: 'required' }]),
    APP: recordingOrigin(),
    ...extra,
  });

describe('REQUEST_LOG', () => {
  it('all (the default): an allowed request gets its line too', async () => {
    const env = routes();
    const lines = requestLines();
    expect((await call('/open/page', { env })).status).toBe(200);
    expect((await call('/auth/health', { env })).status).toBe(200);
    expect(lines().map((l) => [l.path, l.decision])).toEqual([
      ['/open/page', 'allow'],
      ['/auth/health', 'allow'],
    ]);
  });

  it('refusals: allowed requests write no line; denials, invalid requests and errors still do', async () => {
    // REVOCATION_CACHE_SECONDS 0: the allowed request leaves no cached "not revoked" answer
    // for the KV outage below to hit.
    const env = routes({ REQUEST_LOG: 'refusals', REVOCATION_CACHE_SECONDS: '0' });
    const user = await registerUser(undefined, undefined, env);
    const broken = routes({ REQUEST_LOG: 'refusals', REVOKED: { get: async () => Promise.reject(new Error('KV GET failed: 503')) }, REVOCATION_CACHE_SECONDS: '0' });
    const lines = requestLines();
    expect((await call('/open/page', { env })).status).toBe(200);
    expect((await call('/app/page', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/app/page', { env })).status).toBe(401);
    expect((await call('/auth/register', { env, json: { email: 'not-an-email', password: 'x' } })).status).toBe(400);
    expect((await call('/auth/me', { env: broken, headers: bearer(user.access_token) })).status).toBe(503);
    const got = lines();
    expect(got.map((l) => [l.path, l.status, l.decision])).toEqual([
      ['/app/page', 401, 'deny'],
      ['/auth/register', 400, 'invalid'],
      ['/auth/me', 503, 'error'],
    ]);
    expect(got.at(-1)!.level).toBe('error');
  });

  it('any other value is a configuration error naming the setting', async () => {
    const r = await call('/auth/health', { env: makeEnv({ REQUEST_LOG: 'none' }) });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'REQUEST_LOG' });
  });
});

describe('request_id', () => {
  it("is the cf-ray when there is one, else a fresh id per request", async () => {
    const env = routes();
    const lines = requestLines();
    await call('/auth/health', { env, headers: { 'cf-ray': '8f1c2d3e4a5b6c7d-AMS' } });
    await call('/auth/health', { env });
    await call('/auth/health', { env });
    const ids = lines().map((l) => l.request_id);
    expect(ids[0]).toBe('8f1c2d3e4a5b6c7d-AMS');
    expect(typeof ids[1]).toBe('string');
    expect(ids[1]).not.toBe(ids[2]);
    expect(String(ids[1]).length).toBeGreaterThan(8);
  });
});
