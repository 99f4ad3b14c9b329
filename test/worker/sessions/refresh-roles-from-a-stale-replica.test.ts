/**
 * A refresh reads its user from a D1 replica, which may lag the primary. A replica's copy that
 * would put a role into the new access token is confirmed on the primary first: a role an admin
 * has just taken away never comes back in a token because a replica has not caught up. A copy
 * without roles (most users) grants nothing and is used as read.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { baseEnv, call, makeEnv, registerUser, type TokenResponse } from '../support/helpers';

const USER_BY_ID = 'SELECT * FROM users WHERE id = ?';

/** A DB binding whose replica sessions answer the user read with `stale`, a copy from before a change. */
function replicaServing(stale: Record<string, unknown>): D1Database {
  const real = baseEnv.DB;
  const frozen = { bind: () => frozen, first: async () => stale } as unknown as D1PreparedStatement;
  return new Proxy(real, {
    get(t, prop) {
      if (prop === 'withSession') {
        return (arg?: string) => {
          const session = t.withSession(arg);
          if (arg === 'first-primary') return session;
          return new Proxy(session, {
            get(s, p) {
              if (p === 'prepare') return (sql: string) => (sql === USER_BY_ID ? frozen : s.prepare(sql));
              const value = Reflect.get(s, p) as unknown;
              return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(s) : value;
            },
          });
        };
      }
      const value = Reflect.get(t, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

describe('roles in a refreshed access token', () => {
  it('a role just taken away is not granted again by a replica that has not caught up', async () => {
    const t = await registerUser();
    await baseEnv.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(['staff']), t.user.id).run();
    const before = await baseEnv.DB.prepare(USER_BY_ID).bind(t.user.id).first<Record<string, unknown>>();
    await baseEnv.DB.prepare("UPDATE users SET roles = '[]' WHERE id = ?").bind(t.user.id).run();

    const r = await call('/auth/refresh', { env: makeEnv({ DB: replicaServing(before!) }), json: { refresh_token: t.refresh_token } });
    expect(r.status).toBe(200);
    const claims = decodeJwt<{ roles?: string[] }>(((await r.json()) as TokenResponse).access_token);
    expect(claims.roles ?? []).toEqual([]);
  });

  it('a replica copy granting no role is used as read', async () => {
    const t = await registerUser();
    const row = await baseEnv.DB.prepare(USER_BY_ID).bind(t.user.id).first<Record<string, unknown>>();
    const stale = { ...row, email: 'replica-copy@example.com' };
    const r = await call('/auth/refresh', { env: makeEnv({ DB: replicaServing(stale) }), json: { refresh_token: t.refresh_token } });
    expect(r.status).toBe(200);
    expect(decodeJwt<{ email: string }>(((await r.json()) as TokenResponse).access_token).email).toBe('replica-copy@example.com');
  });
});
