/**
 * A sign-in checks a first factor against the account as it read it, then stores a session or a
 * pending second-factor state. If the mailbox owner claims the account in between (a proof of
 * the mailbox: every session ended, factors and password removed, in one batch), what the
 * sign-in read is no longer the account: its session or pending state must not be stored after
 * the claim's batch, which would leave the squatter signed in to the owner's verified account
 * (with no factor left to ask for). The claim is made to land exactly in that gap by running its
 * batch just before the sign-in's write.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { applyMailboxProof } from '../../src/storage/mailbox-proof';
import { nowSeconds } from '../../src/util/time';
import { ENCRYPTION_KEY } from './second-factor-helpers';
import { call, countRows, GOOD_PASSWORD, makeEnv, uniqueEmail, type TestEnv } from './helpers';

/**
 * `db`, but the first statement whose SQL starts with `prefix` (alone or in a batch) runs only
 * after `before` has: the claim lands between the sign-in's reads and that write.
 */
function claimBefore(db: D1Database, prefix: string, before: () => Promise<unknown>): D1Database {
  let fired = false;
  const sqlOf = new WeakMap<object, string>();
  const once = async () => {
    if (fired) return;
    fired = true;
    await before();
  };
  const matches = (sql: string) => sql.trimStart().startsWith(prefix);
  const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const wrapped = new Proxy(statement, {
      get(target, prop) {
        if (prop === 'bind') return (...values: unknown[]) => wrap(target.bind(...values), sql);
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (matches(sql) && (prop === 'run' || prop === 'first' || prop === 'all' || prop === 'raw')) {
          return async (...args: unknown[]) => {
            await once();
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    sqlOf.set(wrapped, sql);
    originals.set(wrapped, statement);
    return wrapped;
  };
  const originals = new WeakMap<object, D1PreparedStatement>();
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === 'batch') {
        return async (statements: D1PreparedStatement[]) => {
          if (statements.some((s) => matches(sqlOf.get(s) ?? ''))) await once();
          return target.batch(statements.map((s) => originals.get(s) ?? s));
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A squatter registers `email` with a password, never proving it. */
async function squat(e: TestEnv, email: string): Promise<string> {
  const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
  expect(r.status, await r.clone().text()).toBe(201);
  const row = await env.DB.prepare('SELECT id, email_verified FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number }>();
  expect(row!.email_verified).toBe(0);
  return row!.id;
}

/** The D1 side of the owner's claim (a verified provider sign-in, a sign-in code). */
const claim = (userId: string, email: string) => () => applyMailboxProof(env.DB, { userId, email, password: { kind: 'remove' }, now: nowSeconds() });

describe('a sign-in that read the account before a claim stores nothing after it', () => {
  it('a password sign-in: no session, no token', async () => {
    const e = makeEnv();
    const email = uniqueEmail('login-race');
    const userId = await squat(e, email);

    const r = await call('/auth/login', { env: { ...e, DB: claimBefore(env.DB, 'INSERT INTO sessions', claim(userId, email)) }, json: { email, password: GOOD_PASSWORD } });
    expect(r.status, await r.clone().text()).toBe(409);
    expect(await r.text()).not.toContain('access_token');
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', userId)).toBe(0);
    expect((await env.DB.prepare('SELECT email_verified FROM users WHERE id = ?').bind(userId).first<{ email_verified: number }>())!.email_verified).toBe(1);
  });

  it('a password sign-in that owes setting up a factor (MFA_REQUIRED_ROLES): no pending state to enrol the squatter\'s own app with', async () => {
    const e = makeEnv({ MFA_REQUIRED_ROLES: 'staff', TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });
    const email = uniqueEmail('pending-race');
    const userId = await squat(e, email);
    // A role an administrator gave the account: a claim keeps it.
    await env.DB.prepare(`UPDATE users SET roles = '["staff"]' WHERE id = ?`).bind(userId).run();

    const r = await call('/auth/login', { env: { ...e, DB: claimBefore(env.DB, 'INSERT INTO mfa_pending', claim(userId, email)) }, json: { email, password: GOOD_PASSWORD } });
    expect(r.status, await r.clone().text()).toBe(409);
    expect(await r.text()).not.toContain('mfa_token');
    expect(await countRows('mfa_pending', 'user_id = ?', userId)).toBe(0);
  });
});
