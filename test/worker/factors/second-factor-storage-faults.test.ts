/**
 * Second factors fail closed: when D1 cannot say whether a user has a second factor, or cannot
 * serve the pending state, the answer is 503 without internals, and no token is issued.
 */
import { failingSessions } from '../support/user-sessions-store';
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, countRows, GOOD_PASSWORD } from '../support/helpers';
import { mfaEnv, totpCode, userWithTotp } from '../support/second-factor-helpers';

const e = mfaEnv();

/** The real D1, except that statements touching `table` fail as in an outage. */
function d1FailingOn(table: string): D1Database {
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (sql: string) => {
          if (sql.includes(table)) throw new Error(`D1_ERROR: Network connection lost. ${sql}`);
          return target.prepare(sql);
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function expect503(r: Response) {
  expect(r.status).toBe(503);
  expect(r.headers.get('retry-after')).toBe('5');
  const text = await r.text();
  expect(JSON.parse(text)).toMatchObject({ error: 'unavailable' });
  expect(text).not.toMatch(/D1|SELECT|totp|mfa_pending|Network/i);
  expect(text).not.toContain('access_token');
}

describe('second factors when D1 fails', () => {
  it('a password sign-in whose second-factor lookup fails issues no token (503)', async () => {
    const u = await userWithTotp(e);
    const before = await countRows('sessions', 'user_id = ?', u.userId);
    const r = await call('/auth/login', { env: { ...e, DB: d1FailingOn('totp_factors') }, json: { email: u.email, password: GOOD_PASSWORD } });
    await expect503(r);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(before);
  });

  it('completing a sign-in while the pending state cannot be read is 503 and leaves it usable', async () => {
    const u = await userWithTotp(e);
    const login = await call('/auth/login', { env: e, json: { email: u.email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await login.json()) as { mfa_token: string };
    const r = await call('/auth/mfa', { env: { ...e, DB: d1FailingOn('mfa_pending') }, json: { mfa_token, code: totpCode(u.secret, 1) } });
    await expect503(r);
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.userId)).toBe(1);
    const retry = await call('/auth/mfa', { env: e, json: { mfa_token, code: totpCode(u.secret, 1) } });
    expect(retry.status).toBe(200);
  });
});

describe('completing a sign-in spends its pending state once, then stores the session', () => {
  it('if the pending state cannot be spent (D1 down): 503, nothing stored, and a retry signs in', async () => {
    const u = await userWithTotp(e);
    const login = await call('/auth/login', { env: e, json: { email: u.email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await login.json()) as { mfa_token: string };
    const before = await countRows('sessions', 'user_id = ?', u.userId);
    const r = await call('/auth/mfa', { env: { ...e, DB: d1FailingOn('UPDATE mfa_pending SET used_at') }, json: { mfa_token, code: u.codes[0]! } });
    await expect503(r);
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.userId)).toBe(1);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(before);
    const retry = await call('/auth/mfa', { env: e, json: { mfa_token, code: u.codes[1]! } });
    expect(retry.status).toBe(200);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(before + 1);
  });

  it('if the session cannot be stored once the state is spent: 503, no session, and the state is not usable again (fail closed)', async () => {
    const u = await userWithTotp(e);
    const login = await call('/auth/login', { env: e, json: { email: u.email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await login.json()) as { mfa_token: string };
    const before = await countRows('sessions', 'user_id = ?', u.userId);
    const r = await call('/auth/mfa', { env: { ...e, USER_SESSIONS: failingSessions() }, json: { mfa_token, code: u.codes[0]! } });
    await expect503(r);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(before);
    const retry = await call('/auth/mfa', { env: e, json: { mfa_token, code: u.codes[1]! } });
    expect(retry.status).toBe(401);
    expect(await retry.json()).toMatchObject({ error: 'invalid_token' });
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(before);
  });
});
