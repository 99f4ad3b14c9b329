/**
 * Requests the per-IP limiter refuses are counted per action and hour in D1 and shown on the
 * console's Health page: the 429 answers as it always did; a burst of refusals in one isolate
 * becomes a write or two, not one per request, and writes stay a second apart; a D1 failure is
 * logged, costs nothing to the answer, and its counts go in the next write; a request the
 * limiter lets through writes nothing; the cron job keeps a week of counts.
 */
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../../src/index';
import { RATE_LIMIT_HITS_RETENTION_SECONDS, runHousekeeping } from '../../../src/scheduled/housekeeping';
import { call, GOOD_PASSWORD, makeEnv, seedUser, type TestEnv } from '../support/helpers';
import { adminWithSecondFactor, browse, consoleEnv, pageHtml } from './console-support';

const HOUR = 3600;
const DAY = 86_400;
const now = () => Math.floor(Date.now() / 1000);
const hourOf = (t: number) => Math.floor(t / HOUR) * HOUR;

/** A limiter binding that refuses every request. */
const refusing = { limit: async () => ({ success: false }) };
/** A limiter binding that lets every request through. */
const passing = { limit: async () => ({ success: true }) };

/** Stored refusals of `action`, all hours. */
async function storedHits(action: string): Promise<number> {
  const row = await env.DB.prepare('SELECT COALESCE(SUM(hits), 0) AS n FROM rate_limit_hits WHERE action = ?').bind(action).first<{ n: number }>();
  return row!.n;
}

/**
 * The real D1 database, with each statement that touches `rate_limit_hits` and each batch
 * recorded (the time each batch was asked for, too); `failBatches` makes every batch fail.
 */
function watchedDb(options: { failBatches?: boolean } = {}) {
  const statements: string[] = [];
  const batches: number[] = [];
  const db = new Proxy(env.DB, {
    get(target, name) {
      if (name === 'prepare')
        return (sql: string) => {
          if (sql.includes('rate_limit_hits')) statements.push(sql);
          return target.prepare(sql);
        };
      if (name === 'batch')
        return (stmts: D1PreparedStatement[]) => {
          batches.push(Date.now());
          return options.failBatches ? Promise.reject(new Error('D1 is down')) : target.batch(stmts);
        };
      const value = Reflect.get(target, name) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { db, statements, batches };
}

async function expectRefused(r: Response, period: number) {
  expect(r.status).toBe(429);
  expect(r.headers.get('retry-after')).toBe(String(period));
  expect(await r.json()).toEqual({ error: 'rate_limited', error_description: 'Too many requests from your network. Try again shortly.' });
}

const refresh = (e: TestEnv) => call('/auth/refresh', { env: e, json: { refresh_token: 'x'.repeat(43) } });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a refusal of the per-IP limiter is counted and shown', () => {
  it('answers 429 as before, is counted under its action and this hour, and shows on the Health page with its total in the summary', async () => {
    const e = consoleEnv({ RATE_LIMITER_REFRESH: refusing, RATE_LIMIT_PERIOD: '10' });
    const admin = await adminWithSecondFactor(e);
    // Yesterday's refusals and a count of an action this version does not have.
    const thisHour = hourOf(now());
    await env.DB.prepare('INSERT INTO rate_limit_hits (hour, action, hits) VALUES (?, ?, ?), (?, ?, ?)').bind(thisHour - 25 * HOUR, 'login', 50, thisHour - 2 * HOUR, 'retired_action', 4).run();
    const before = now();
    for (let i = 0; i < 3; i++) await expectRefused(await refresh(e), 10);
    const { results } = await env.DB.prepare("SELECT hour, hits FROM rate_limit_hits WHERE action = 'refresh'").all<{ hour: number; hits: number }>();
    expect(results.reduce((n, r) => n + r.hits, 0)).toBe(3);
    for (const r of results) expect([hourOf(before), hourOf(now())]).toContain(r.hour);

    const r = await browse(e, admin.jar, '/auth/admin/console/health');
    const html = await pageHtml(r);
    expect(r.status).toBe(200);
    const row = (action: string) => {
      const start = html.indexOf(`<tr data-action="${action}">`);
      expect(start, action).toBeGreaterThan(-1);
      return html.slice(start, html.indexOf('</tr>', start));
    };
    expect(row('refresh')).toContain('class="hits">3</td>');
    expect(row('refresh')).toContain('<code>RATE_LIMITER_REFRESH</code>');
    // An action without a binding of its own is limited by the shared one; yesterday is left out.
    expect(row('login')).toContain('class="hits">0</td>');
    expect(row('login')).toContain('<code>RATE_LIMITER</code>');
    expect(row('retired_action')).toContain('class="hits">4</td>');
    expect(row('retired_action')).toContain('no binding');
    expect(html).toContain('retry after 10 s (RATE_LIMIT_PERIOD)');
    expect(html).toContain('<li data-summary="rate-limited">Requests refused by the per-IP limiter (429) in the last 24 hours: at least 7</li>');
    // The per-account back-off is shown apart, under its own name.
    expect(html).toContain('<li data-summary="bursts">Accounts slowed after failed passwords in the last 24 hours: 0</li>');
    expect(html).not.toContain('not counted in storage');
  });

  it('a SCIM request over the limit is counted once under scim (counted before the directory look-up, refused by the SCIM routes)', async () => {
    const e = makeEnv({ RATE_LIMITER_SCIM: refusing });
    const before = await storedHits('scim');
    for (let i = 0; i < 2; i++) {
      const r = await call('/auth/scim/v2/Users', { env: e, headers: { authorization: 'Bearer nothing' } });
      expect(r.status).toBe(429);
    }
    expect((await storedHits('scim')) - before).toBe(2);
  });

  it('a forward-auth refusal over the limit is counted under verify_failure (the hot path counts only its 429s)', async () => {
    const e = makeEnv({ RATE_LIMITER_VERIFY_FAILURE: refusing });
    const before = await storedHits('verify_failure');
    await expectRefused(await call('/auth/verify', { env: e }), 60);
    expect((await storedHits('verify_failure')) - before).toBe(1);
  });
});

describe('counting never loads D1 with a write per refusal', () => {
  it('forty refusals at once from one isolate are written in at most two batches, each hit counted', async () => {
    const watched = watchedDb();
    const e = makeEnv({ RATE_LIMITER_REFRESH: refusing, DB: watched.db });
    const before = await storedHits('refresh');
    const answers = await Promise.all(Array.from({ length: 40 }, () => refresh(e)));
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(429));
    expect((await storedHits('refresh')) - before).toBe(40);
    expect(watched.batches.length).toBeGreaterThanOrEqual(1);
    expect(watched.batches.length).toBeLessThanOrEqual(2);
    expect(watched.statements.length).toBeLessThanOrEqual(2);
  });

  it('one refusal after another: each isolate writes at most once a second', async () => {
    const watched = watchedDb();
    const e = makeEnv({ RATE_LIMITER_REFRESH: refusing, DB: watched.db });
    const before = await storedHits('refresh');
    for (let i = 0; i < 4; i++) await expectRefused(await refresh(e), 60);
    expect((await storedHits('refresh')) - before).toBe(4);
    expect(watched.batches.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < watched.batches.length; i++) expect(watched.batches[i]! - watched.batches[i - 1]!).toBeGreaterThanOrEqual(990);
  }, 15_000);
});

describe('a D1 failure while counting', () => {
  it('still answers 429, logs rate_limit_count_failed, and the next write carries the lost count', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
    const before = await storedHits('refresh');
    const broken = watchedDb({ failBatches: true });
    await expectRefused(await refresh(makeEnv({ RATE_LIMITER_REFRESH: refusing, DB: broken.db })), 60);
    expect(broken.batches.length).toBe(1);
    const failure = errors.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'rate_limit_count_failed');
    expect(failure).toMatchObject({ level: 'error', hits: 1, dropped: 0, error: 'D1 is down' });
    expect(await storedHits('refresh')).toBe(before);
    // D1 answers again: the next refusal's write adds both.
    await expectRefused(await refresh(makeEnv({ RATE_LIMITER_REFRESH: refusing })), 60);
    expect((await storedHits('refresh')) - before).toBe(2);
  }, 15_000);
});

describe('requests the limiter lets through', () => {
  it('write nothing: a sign-in, a refused refresh token, a forward-auth check without a session', async () => {
    const watched = watchedDb();
    const e = makeEnv({ RATE_LIMITER: passing, DB: watched.db });
    const user = await seedUser();
    const { results: before } = await env.DB.prepare('SELECT * FROM rate_limit_hits ORDER BY hour, action').all();
    expect((await call('/auth/login', { env: e, json: { email: user.email, password: GOOD_PASSWORD } })).status).toBe(200);
    expect((await refresh(e)).status).toBe(401);
    expect((await call('/auth/verify', { env: e })).status).toBe(401);
    expect(watched.statements).toEqual([]);
    const { results: after } = await env.DB.prepare('SELECT * FROM rate_limit_hits ORDER BY hour, action').all();
    expect(after).toEqual(before);
  });
});

describe('retention', () => {
  async function seedHours(t: number) {
    const rows: [number, string][] = [
      [hourOf(t - 8 * DAY), 'login'],
      [hourOf(t - RATE_LIMIT_HITS_RETENTION_SECONDS) - HOUR, 'refresh'],
      [hourOf(t - 6 * DAY), 'login'],
      [hourOf(t), 'oauth'],
    ];
    await env.DB.prepare('DELETE FROM rate_limit_hits').run();
    for (const [hour, action] of rows) await env.DB.prepare('INSERT INTO rate_limit_hits (hour, action, hits) VALUES (?, ?, 5)').bind(hour, action).run();
  }
  const storedHours = async () => (await env.DB.prepare('SELECT hour FROM rate_limit_hits ORDER BY hour').all<{ hour: number }>()).results.map((r) => r.hour);

  it('housekeeping deletes counts older than seven days and keeps the newer ones', async () => {
    const t = now();
    await seedHours(t);
    const report = await runHousekeeping(env.DB, { AUDIT_RETENTION_DAYS: 90 }, t);
    expect(report.rateLimitHits).toBe(2);
    expect(await storedHours()).toEqual([hourOf(t - 6 * DAY), hourOf(t)]);
  });

  it('the cron run prunes them too', async () => {
    const t = now();
    await seedHours(t);
    const controller = createScheduledController({ scheduledTime: new Date(t * 1000), cron: '17 * * * *' });
    const ctx = createExecutionContext();
    await worker.scheduled(controller, makeEnv() as never);
    await waitOnExecutionContext(ctx);
    expect(await storedHours()).toEqual([hourOf(t - 6 * DAY), hourOf(t)]);
  });
});
