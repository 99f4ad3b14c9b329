/**
 * The cron handler: directory work only. It deletes old audit rows, stale sign-in counters and
 * the session rows earlier versions kept in D1 once ended, in bounded batches, and leaves
 * everything else alone (sessions now live in each user's object, which cleans up with alarms).
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { runHousekeeping } from '../../../src/scheduled/housekeeping';
import worker from '../../../src/index';
import { baseEnv, countRows, defaultEnv, makeEnv, registerUser } from '../support/helpers';

const DAY = 86_400;
const db = baseEnv.DB;

async function seedSession(id: string, userId: string, expiresAt: number, revokedAt: number | null) {
  await db
    .prepare(`INSERT INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, 'f', 0, ?, 0, ?)`)
    .bind(id, userId, `hash-${id}`, expiresAt, revokedAt)
    .run();
}

/** Rows in D1's session tables (what earlier versions stored), not in the users' objects. */
async function d1Rows(table: 'sessions' | 'rotated_refresh_tokens', where: string, ...params: string[]): Promise<number> {
  return (await db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).bind(...params).first<{ n: number }>())?.n ?? 0;
}

async function seedEvent(at: number, event = 'login') {
  await db.prepare(`INSERT INTO auth_events (at, event, outcome) VALUES (?, ?, 'success')`).bind(at, event).run();
}

async function clearTables() {
  await db.batch([db.prepare('DELETE FROM auth_events'), db.prepare('DELETE FROM login_failures'), db.prepare('DELETE FROM sessions')]);
}

describe('scheduled housekeeping', () => {
  it('the Worker exports a scheduled handler that cleans D1 (called as the cron would)', async () => {
    await clearTables();
    const user = await registerUser();
    const t = Math.floor(Date.now() / 1000);
    await seedSession('ses_cron_old', user.user.id, t - 3 * DAY, null);
    await seedEvent(t - 200 * DAY, 'ancient');
    await seedEvent(t - 1 * DAY, 'recent');
    const controller = createScheduledController({ scheduledTime: new Date(t * 1000), cron: '17 * * * *' });
    const ctx = createExecutionContext();
    await worker.scheduled(controller, defaultEnv as never);
    await waitOnExecutionContext(ctx);
    expect(await d1Rows('sessions', 'id = ?', 'ses_cron_old')).toBe(0);
    expect(await countRows('auth_events', "event = 'ancient'")).toBe(0);
    expect(await countRows('auth_events', "event = 'recent'")).toBe(1);
    // The live session from registration (in the user's object) is untouched.
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', user.user.id)).toBe(1);
  });

  it('deletes exactly what is due: sessions ended over a day ago, events past AUDIT_RETENTION_DAYS, counters whose hour is over', async () => {
    await clearTables();
    const user = await registerUser();
    const t = Math.floor(Date.now() / 1000);
    await seedSession('ses_expired', user.user.id, t - 2 * DAY, null);
    await seedSession('ses_revoked_long_ago', user.user.id, t + 10 * DAY, t - 2 * DAY);
    await seedSession('ses_revoked_recently', user.user.id, t + 10 * DAY, t - 3600);
    await seedSession('ses_expired_recently', user.user.id, t - 3600, null);
    await seedSession('ses_live', user.user.id, t + 10 * DAY, null);
    await db.prepare('INSERT INTO rotated_refresh_tokens (hash, session_id, rotated_at) VALUES (?, ?, ?)').bind('rot-1', 'ses_expired', t - 3 * DAY).run();
    await seedEvent(t - 31 * DAY, 'old');
    await seedEvent(t - 29 * DAY, 'kept');
    await db.batch([
      db.prepare('INSERT INTO login_failures VALUES (?, 3, ?, ?)').bind('stale@example.com', t - 7200, t - 7000),
      db.prepare('INSERT INTO login_failures VALUES (?, 3, ?, ?)').bind('active@example.com', t - 600, t - 10),
    ]);

    const report = await runHousekeeping(db, { AUDIT_RETENTION_DAYS: 30 }, t);
    // D1 counts the cascaded rotated_refresh_tokens row in `changes`: 2 sessions + 1 token.
    expect(report).toEqual({ sessions: 3, events: 1, loginFailures: 1, accountTokens: 0, mfaPending: 0, secondFactorFailures: 0, webauthnChallenges: 0, rateLimitHits: 0, incomplete: false });
    const { results } = await db.prepare('SELECT id FROM sessions WHERE user_id = ? ORDER BY id').bind(user.user.id).all<{ id: string }>();
    const kept = results.map((r) => r.id);
    expect(kept).toHaveLength(3); // the three below (registration's session is in the user's object)
    expect(kept).toEqual(expect.arrayContaining(['ses_expired_recently', 'ses_live', 'ses_revoked_recently']));
    expect(await d1Rows('rotated_refresh_tokens', 'hash = ?', 'rot-1')).toBe(0);
    expect(await countRows('auth_events', "event = 'old'")).toBe(0);
    expect(await countRows('auth_events', "event = 'kept'")).toBe(1);
    expect(await countRows('login_failures', 'email = ?', 'stale@example.com')).toBe(0);
    expect(await countRows('login_failures', 'email = ?', 'active@example.com')).toBe(1);
    expect(await countRows('users', 'id = ?', user.user.id)).toBe(1);
  });

  it('works in bounded batches: stops after its budget, reports incomplete, and the next run continues', async () => {
    await clearTables();
    const t = 2_000_000_000;
    const statements = Array.from({ length: 25 }, () => db.prepare(`INSERT INTO auth_events (at, event, outcome) VALUES (?, 'old', 'success')`).bind(t - 400 * DAY));
    await db.batch(statements);
    const limits = { batchSize: 4, maxBatches: 3 };
    expect(await runHousekeeping(db, { AUDIT_RETENTION_DAYS: 90 }, t, limits)).toMatchObject({ events: 12, incomplete: true });
    expect(await countRows('auth_events', "event = 'old'")).toBe(13);
    expect(await runHousekeeping(db, { AUDIT_RETENTION_DAYS: 90 }, t, limits)).toMatchObject({ events: 12, incomplete: true });
    expect(await runHousekeeping(db, { AUDIT_RETENTION_DAYS: 90 }, t, limits)).toMatchObject({ events: 1, incomplete: false });
    expect(await countRows('auth_events', "event = 'old'")).toBe(0);
  });

  it('with a bad configuration the cron run does nothing and logs why', async () => {
    await clearTables();
    await seedEvent(1, 'ancient');
    const controller = createScheduledController({ scheduledTime: new Date(), cron: '17 * * * *' });
    await worker.scheduled(controller, makeEnv({ AUDIT_RETENTION_DAYS: 'forever' }) as never);
    expect(await countRows('auth_events', "event = 'ancient'")).toBe(1);
  });

  it('a D1 failure fails the cron run (so it shows as failed) without partial damage', async () => {
    await clearTables();
    await seedEvent(1, 'ancient');
    const broken = makeEnv({
      DB: new Proxy(baseEnv.DB, {
        get(target, prop) {
          if (prop === 'prepare') return () => { throw new Error('D1_ERROR: Network connection lost.'); };
          const value = Reflect.get(target, prop);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    });
    const controller = createScheduledController({ scheduledTime: new Date(), cron: '17 * * * *' });
    await expect(worker.scheduled(controller, broken as never)).rejects.toThrow('D1_ERROR');
    expect(await countRows('auth_events', "event = 'ancient'")).toBe(1);
  });
});
