/**
 * Per-IP burst limits through the real `[[ratelimits]]` binding of wrangler.toml (limit 100
 * per 60 s), and through injected bindings for the other outcomes.
 */
import { describe, expect, it, vi } from 'vitest';
import { inOneWindow } from '../../rate-window';
import { baseEnv, call, countRows, GOOD_PASSWORD, makeEnv, registerUser, seedUser, stateSnapshot, uniqueEmail } from '../support/helpers';

const ip = (n: number) => ({ 'cf-connecting-ip': `198.51.100.${n}` });

describe('rate limits with the real binding', () => {
  it('the binding from wrangler.toml is present in the test env', () => {
    expect(typeof (baseEnv as { RATE_LIMITER?: RateLimit }).RATE_LIMITER?.limit).toBe('function');
  });

  it('refresh: the 101st request in a minute from one IP gets 429 rate_limited with Retry-After; other IPs are unaffected', async () => {
    // One address (a fresh bucket) and one account per attempt, should the count cross a window
    // boundary: an attempt that crossed one may have let its last refresh through and rotated the token.
    const { user, statuses, limited, before, limitedIp } = await inOneWindow(async (attempt) => {
      const user = await registerUser();
      const limitedIp = ip(1 + 10 * attempt);
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) {
        const r = await call('/auth/refresh', { json: { refresh_token: 'x'.repeat(43) }, headers: limitedIp });
        statuses.push(r.status);
      }
      const before = await stateSnapshot();
      const limited = await call('/auth/refresh', { json: { refresh_token: user.refresh_token }, headers: limitedIp });
      return { user, statuses, limited, before, limitedIp };
    });
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(await limited.json()).toEqual({ error: 'rate_limited', error_description: expect.any(String) });
    // The refused refresh did not rotate or end anything.
    expect(await stateSnapshot()).toEqual(before);
    // Another IP, same token: still works (the token was not consumed).
    const other = await call('/auth/refresh', { json: { refresh_token: user.refresh_token }, headers: ip(2) });
    expect(other.status).toBe(200);
    // Sign-in from the limited IP is a different bucket.
    const login = await call('/auth/login', { json: { email: user.user.email, password: GOOD_PASSWORD }, headers: limitedIp });
    expect(login.status).toBe(200);
  }, 120_000);
});

function countingLimiter(allowed: number) {
  const keys: { key: string; delta?: number }[] = [];
  return {
    keys,
    binding: {
      async limit(o: { key: string; delta?: number }) {
        keys.push(o);
        return { success: keys.length <= allowed };
      },
    },
  };
}

describe('rate limits with injected bindings', () => {
  it('sign-in, registration and refresh are keyed by action and CF-Connecting-IP (never X-Forwarded-For); an action may have its own binding', async () => {
    const shared = countingLimiter(1000);
    const login = countingLimiter(1000);
    const env = makeEnv({ RATE_LIMITER: shared.binding, RATE_LIMITER_LOGIN: login.binding });
    const email = uniqueEmail();
    const reg = await call('/auth/register', { env, json: { email, password: GOOD_PASSWORD }, headers: { ...ip(9), 'x-forwarded-for': '1.2.3.4' } });
    expect(reg.status).toBe(201);
    const signIn = await call('/auth/login', { env, json: { email, password: GOOD_PASSWORD }, headers: ip(9) });
    expect(signIn.status).toBe(200);
    const { refresh_token } = await signIn.json<{ refresh_token: string }>();
    expect((await call('/auth/refresh', { env, json: { refresh_token }, headers: ip(9) })).status).toBe(200);
    expect(shared.keys).toEqual([{ key: 'register:198.51.100.9' }, { key: 'refresh:198.51.100.9' }]);
    expect(login.keys).toEqual([{ key: 'login:198.51.100.9' }]);
  });

  it('a refused sign-in creates no session and a refused registration no user; a form post gets the page with Retry-After', async () => {
    const limiter = countingLimiter(0);
    const env = makeEnv({ RATE_LIMITER: limiter.binding, RATE_LIMIT_PERIOD: '10' });
    const user = { user: await seedUser() };
    const before = await stateSnapshot();
    const login = await call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } });
    expect(login.status).toBe(429);
    expect(login.headers.get('retry-after')).toBe('10');
    expect((await login.json<{ error: string }>()).error).toBe('rate_limited');
    const reg = await call('/auth/register', { env, json: { email: uniqueEmail(), password: GOOD_PASSWORD } });
    expect(reg.status).toBe(429);
    const form = await call('/auth/login', { env, form: { email: user.user.email, password: GOOD_PASSWORD }, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(form.status).toBe(429);
    expect(form.headers.get('retry-after')).toBe('10');
    expect(form.headers.get('content-type')).toContain('text/html');
    expect(await form.text()).toContain('Too many requests');
    expect(await stateSnapshot()).toEqual(before);
    // No failure was counted against the account either: the limiter answered first.
    expect(await countRows('login_failures', 'email = ?', user.user.email)).toBe(0);
  });

  it('forward-auth: only refused /auth/verify calls count (verify_failure); over the limit a refusal is 429, a valid token still passes', async () => {
    const limiter = countingLimiter(2);
    const env = makeEnv({ RATE_LIMITER: limiter.binding });
    const user = await registerUser(); // under the default env: its registration is not counted here
    const signedIn = { ...ip(7), authorization: `Bearer ${user.access_token}` };
    expect((await call('/auth/verify', { env, headers: signedIn })).status).toBe(200);
    expect(limiter.keys).toEqual([]);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await call('/auth/verify', { env, headers: ip(7) })).status);
    expect(statuses).toEqual([401, 401, 429]);
    expect(limiter.keys).toEqual(Array.from({ length: 3 }, () => ({ key: 'verify_failure:198.51.100.7' })));
    const limited = await call('/auth/verify', { env, headers: ip(7) });
    expect(limited.headers.get('retry-after')).toBe('60');
    expect((await limited.json<{ error: string }>()).error).toBe('rate_limited');
    // Signed-in traffic from the same IP is neither slowed nor counted.
    expect((await call('/auth/verify', { env, headers: signedIn })).status).toBe(200);
    expect(limiter.keys).toHaveLength(4);
  });

  it('without the binding everything works and the gateway says so once in the log', async () => {
    const env = makeEnv({ RATE_LIMITER: undefined });
    const warn = vi.spyOn(console, 'warn');
    const email = uniqueEmail();
    expect((await call('/auth/register', { env, json: { email, password: GOOD_PASSWORD } })).status).toBe(201);
    expect((await call('/auth/login', { env, json: { email, password: GOOD_PASSWORD } })).status).toBe(200);
    const lines = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('rate_limiter_missing'));
    expect(lines).toHaveLength(1);
    warn.mockRestore();
  });

  it('RATE_LIMIT_PERIOD other than the binding periods fails closed with a clear config error', async () => {
    const env = makeEnv({ RATE_LIMIT_PERIOD: '30' });
    const r = await call('/auth/health', { env });
    expect(r.status).toBe(500);
    const body = await r.json<{ error: string; setting: string }>();
    expect(body).toMatchObject({ error: 'configuration_error', setting: 'RATE_LIMIT_PERIOD' });
  });
});
