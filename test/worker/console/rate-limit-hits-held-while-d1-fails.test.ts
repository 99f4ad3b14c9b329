/**
 * While D1 refuses the per-IP limiter's refusal counts, an isolate holds only this hour's and the
 * last one's for the next write: older counts are given up (and the log says how many), so the
 * map stays at most actions × 2 entries however long D1 is down. A file of its own: the counter's
 * state is per isolate, and this test needs an isolate that has not written yet.
 */
import { env } from 'cloudflare:test';
import { afterEach, expect, it, vi } from 'vitest';
import { call, makeEnv } from '../support/helpers';

const HOUR = 3600;
const refusing = { limit: async () => ({ success: false }) };
const refresh = (e: Record<string, unknown>) => call('/auth/refresh', { env: makeEnv(e), json: { refresh_token: 'x'.repeat(43) } });
const storedRefreshHits = async () => (await env.DB.prepare("SELECT COALESCE(SUM(hits), 0) AS n FROM rate_limit_hits WHERE action = 'refresh'").first<{ n: number }>())!.n;

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

it('a count from two hours before a failed write is dropped and logged, not held; the next write carries only newer ones', async () => {
  const errors: Record<string, unknown>[] = [];
  vi.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(JSON.parse(String(line)) as Record<string, unknown>));
  // A refusal two hours ago whose write fails now: the clock moves on while D1 does not answer.
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 2 * HOUR * 1000 });
  const failingDb = new Proxy(env.DB, {
    get(target, name) {
      if (name === 'batch')
        return () => {
          vi.useRealTimers();
          return Promise.reject(new Error('D1 is down'));
        };
      const value = Reflect.get(target, name) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  expect((await refresh({ RATE_LIMITER_REFRESH: refusing, DB: failingDb })).status).toBe(429);
  expect(errors.find((l) => l.event === 'rate_limit_count_failed')).toMatchObject({ hits: 1, dropped: 1 });

  // D1 answers again: only the new refusal is written.
  expect((await refresh({ RATE_LIMITER_REFRESH: refusing })).status).toBe(429);
  expect(await storedRefreshHits()).toBe(1);
});
