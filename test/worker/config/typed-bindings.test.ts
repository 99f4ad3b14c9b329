/**
 * Bindings read by a name known only at run time: a route's `service:NAME` origin and the
 * per-action `RATE_LIMITER_<ACTION>` limiters (env.ts, middleware/rate-limit.ts).
 */
import { describe, expect, it } from 'vitest';
import { bearer, call, GOOD_PASSWORD, makeEnv, registerUser, uniqueEmail } from '../support/helpers';
import { proxyEnv } from '../support/proxy-helpers';

const refusing = () => {
  const keys: string[] = [];
  return { keys, binding: { limit: async ({ key }: { key: string }) => (keys.push(key), { success: false }) } };
};

describe('service bindings named by ROUTES', () => {
  it.each([
    ['absent', {}],
    ['a plain setting, not a binding', { ORIGIN: 'https://not-a-binding.example' }],
    ['an object without fetch', { ORIGIN: { connect: () => null } }],
  ])('one that is %s answers 502 bad_gateway, naming nothing', async (_, bindings) => {
    const env = proxyEnv([{ path: '/app', origin: 'service:ORIGIN', auth: 'required' }], bindings);
    const user = await registerUser(undefined, undefined, env);
    const r = await call('/app/x', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(502);
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ error: 'bad_gateway', error_description: 'The origin service is not available.' });
    expect(text).not.toContain('ORIGIN');
  });

  it('one with fetch receives the request', async () => {
    const seen: string[] = [];
    const env = proxyEnv([{ path: '/app', origin: 'service:ORIGIN', auth: 'required' }], { ORIGIN: { fetch: async (input: RequestInfo, init?: RequestInit) => (seen.push(new URL(new Request(input, init).url).pathname), new Response('hi')) } });
    const user = await registerUser(undefined, undefined, env);
    const r = await call('/app/x', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('hi');
    expect(seen).toEqual(['/app/x']);
  });
});

describe('per-action rate limiters', () => {
  it('RATE_LIMITER_REGISTER, _REFRESH and _OAUTH each limit their own action, not the others', async () => {
    const register = refusing();
    const refresh = refusing();
    const oauth = refusing();
    const env = makeEnv({ RATE_LIMITER_REGISTER: register.binding, RATE_LIMITER_REFRESH: refresh.binding, RATE_LIMITER_OAUTH: oauth.binding });
    const ip = { 'cf-connecting-ip': '198.51.100.77' };
    const reg = await call('/auth/register', { env, json: { email: uniqueEmail(), password: GOOD_PASSWORD }, headers: ip });
    expect(reg.status).toBe(429);
    expect(await reg.json()).toMatchObject({ error: 'rate_limited' });
    const ref = await call('/auth/refresh', { env, json: { refresh_token: 'x' }, headers: ip });
    expect(ref.status).toBe(429);
    const start = await call('/auth/login/github', { env, headers: ip });
    expect(start.status).toBe(429);
    expect(register.keys).toEqual(['register:198.51.100.77']);
    expect(refresh.keys).toEqual(['refresh:198.51.100.77']);
    expect(oauth.keys).toEqual(['oauth:198.51.100.77']);
  });
});
