/**
 * One JSON log line per request outcome: route, policy, decision, user id, latency; never a
 * token, cookie, password or query string.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bearer, call, GOOD_PASSWORD, makeEnv, registerUser } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

type Line = Record<string, unknown>;

function capture() {
  const out = vi.spyOn(console, 'log');
  const err = vi.spyOn(console, 'error');
  const warn = vi.spyOn(console, 'warn');
  const all = () => [...out.mock.calls, ...err.mock.calls, ...warn.mock.calls].map((c) => String(c[0]));
  return {
    text: () => all().join('\n'),
    requests: () => all().map((l) => JSON.parse(l) as Line).filter((l) => l.event === 'request'),
  };
}

afterEach(() => vi.restoreAllMocks());

describe('request log', () => {
  it('an allowed request: one line with route, policy, decision, status, user id and latency', async () => {
    const user = await registerUser();
    const log = capture();
    const r = await call('/auth/me?debug=secret-query-value', { headers: bearer(user.access_token) });
    expect(r.status).toBe(200);
    const lines = log.requests();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      method: 'GET',
      route: '/auth/me',
      path: '/auth/me',
      policy: 'gateway',
      decision: 'allow',
      status: 200,
      user_id: user.user.id,
      ip: '203.0.113.7',
    });
    expect(typeof lines[0]!.latency_ms).toBe('number');
    expect(typeof lines[0]!.request_id).toBe('string');
    const text = log.text();
    expect(text).not.toContain(user.access_token);
    expect(text).not.toContain('secret-query-value');
  });

  it('denials, invalid input and rate limits get their own decision; a sign-in never logs the password or tokens', async () => {
    const user = await registerUser();
    const limited = makeEnv({ RATE_LIMITER: { limit: async () => ({ success: false }) } });
    const log = capture();
    await call('/auth/me', { headers: bearer('garbage.token.here') });
    await call('/auth/register', { json: { email: 'not-an-email', password: GOOD_PASSWORD } });
    await call('/auth/login', { env: limited, json: { email: user.user.email, password: GOOD_PASSWORD } });
    const ok = await call('/auth/login', { json: { email: user.user.email, password: GOOD_PASSWORD } });
    const tokens = await ok.json<{ access_token: string; refresh_token: string }>();
    expect(log.requests().map((l) => [l.route, l.status, l.decision])).toEqual([
      ['/auth/me', 401, 'deny'],
      ['/auth/register', 400, 'invalid'],
      ['/auth/login', 429, 'rate_limited'],
      ['/auth/login', 200, 'allow'],
    ]);
    const text = log.text();
    for (const secret of [GOOD_PASSWORD, tokens.access_token, tokens.refresh_token, user.refresh_token]) expect(text).not.toContain(secret);
  });

  it("a proxied request logs the route's policy; a failure logs decision error at level error", async () => {
    const origin = recordingOrigin();
    const env = makeEnv({ ROUTES: JSON.stringify([{ path: '/app', origin: 'service:APP', auth: 'required' }, { path: '/open', origin: 'service:APP', auth: 'public' }]), APP: origin, REVOCATION_CACHE_SECONDS: '0' });
    // (0: the allowed request leaves no cached "not revoked" answer for the KV outage below to hit.)
    const user = await registerUser(undefined, undefined, env);
    const log = capture();
    await call('/app/page', { env, headers: bearer(user.access_token) });
    await call('/open/page', { env });
    await call('/app/page', { env });
    const broken = makeEnv({ REVOKED: { get: async () => Promise.reject(new Error('KV GET failed: 503')) } });
    await call('/auth/me', { env: broken, headers: bearer(user.access_token) });
    const lines = log.requests();
    expect(lines.map((l) => [l.path, l.policy, l.decision, l.user_id])).toEqual([
      ['/app/page', 'required', 'allow', user.user.id],
      ['/open/page', 'public', 'allow', null],
      ['/app/page', 'required', 'deny', null],
      ['/auth/me', 'gateway', 'error', null],
    ]);
    expect(lines.at(-1)!.level).toBe('error');
    // Proxied requests name the ROUTES entry they matched, not the catch-all.
    expect(lines.slice(0, 3).map((l) => l.route)).toEqual(['/app', '/open', '/app']);
  });
});
