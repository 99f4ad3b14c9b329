/**
 * A clock that steps back (the host's time corrected) after an isolate wrote its refusal counts
 * does not hold the next write back by the size of the step: the write still comes within the
 * spacing (a second), inside the refusing request's `waitUntil`. A wait as long as the step
 * would outlive the request (a `waitUntil` is given about 30 s), so the write would never run
 * and, its flag still set, no later refusal of the isolate would be written either. A file of
 * its own: the counter's state is per isolate, and this test needs one that has not written yet.
 */
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, expect, it, vi } from 'vitest';
import worker from '../../../src/index';
import { makeEnv, PUBLIC_URL } from '../support/helpers';

const refusing = { limit: async () => ({ success: false }) };
const storedRefreshHits = async () => (await env.DB.prepare("SELECT COALESCE(SUM(hits), 0) AS n FROM rate_limit_hits WHERE action = 'refresh'").first<{ n: number }>())!.n;

/** A refused refresh; `settled` says whether its `waitUntil` work ended within `withinMs`. */
async function refusedRefresh(withinMs: number): Promise<{ status: number; settled: boolean }> {
  const request = new Request(new URL('/auth/refresh', PUBLIC_URL), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': '203.0.113.7' },
    body: JSON.stringify({ refresh_token: 'x'.repeat(43) }),
  });
  const ctx = createExecutionContext();
  const r = await worker.fetch(request, makeEnv({ RATE_LIMITER_REFRESH: refusing }) as never, ctx);
  const settled = await Promise.race([waitOnExecutionContext(ctx).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), withinMs))]);
  return { status: r.status, settled };
}

afterEach(() => {
  vi.useRealTimers();
});

it('after the clock steps back an hour, the next refusal is still written within about a second', async () => {
  const before = await storedRefreshHits();
  // The isolate writes its first count while the clock runs an hour ahead.
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 3_600_000 });
  expect(await refusedRefresh(5_000)).toEqual({ status: 429, settled: true });
  expect((await storedRefreshHits()) - before).toBe(1);
  // The clock is put right: an hour back.
  vi.useRealTimers();
  expect(await refusedRefresh(5_000)).toEqual({ status: 429, settled: true });
  expect((await storedRefreshHits()) - before).toBe(2);
}, 15_000);
