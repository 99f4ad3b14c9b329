/**
 * The Sessions area's pages end at 500 (10,000 users): when more users signed in within
 * SESSION_MAX_AGE, the last page says so and how to reach the others (name the user), rather
 * than ending as if the list were whole.
 */
import { env } from 'cloudflare:test';
import { beforeAll, expect, it } from 'vitest';
import type { TestEnv } from '../support/helpers';
import type { Jar } from '../support/second-factor-helpers';
import { adminWithSecondFactor, browse, consoleEnv, pageHtml } from './console-support';

const SESSIONS = '/auth/admin/console/sessions';

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  e = consoleEnv();
  admin = await adminWithSecondFactor(e);
});

it('says on its last page that more users signed in than the pages reach, and that naming a user finds theirs', async () => {
  const t = Math.floor(Date.now() / 1000) - 86_400;
  // 10,001 more users with a sign-in a day ago: the admin's own, newer, makes 10,002, past 500 pages of 20.
  await env.DB.batch([
    env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
       INSERT INTO users (id, email, created_at, updated_at) SELECT 'usr_reach' || i, 'reach' || i || '@example.com', ?1, ?1 FROM n`,
    ).bind(t),
    env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
       INSERT INTO auth_events (at, event, outcome, user_id) SELECT ?1 - i, 'login', 'success', 'usr_reach' || i FROM n`,
    ).bind(t),
  ]);
  const before = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?page=499`));
  expect(before).toContain('rel="next"');
  expect(before).not.toContain('id="pages-end"');
  const last = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?page=500`));
  expect(last).not.toContain('rel="next"');
  expect(last).toContain('id="pages-end"');
  expect(last).toContain('More users signed in than these 500 pages reach');
});
