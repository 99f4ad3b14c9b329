/**
 * Reuse detection holds across the move of a session from D1 to its user's object: a refresh
 * token of the old shape that was rotated by the move (by its owner or by a thief, whoever came
 * first) and is presented again after the grace is reuse, and ends the session: the other party's
 * new token stops working.
 */
import { describe, expect, it } from 'vitest';
import { randomId, sha256 } from '../../../src/util/random';
import { baseEnv, call, countRows, revokedKeys, uniqueEmail, type TokenResponse } from '../support/helpers';
import { sessionExec } from '../support/user-sessions-store';

const now = () => Math.floor(Date.now() / 1000);
const refresh = (refresh_token: string) => call('/auth/refresh', { json: { refresh_token } });

async function userWithD1Session() {
  const db = baseEnv.DB;
  const userId = `usr_${randomId(12)}`;
  const t = now();
  await db.prepare('INSERT INTO users (id, email, email_verified, created_at, updated_at) VALUES (?, ?, 1, ?, ?)').bind(userId, uniqueEmail('migrated'), t - 3600, t - 3600).run();
  const id = `ses_${randomId(12)}`;
  const token = randomId(32);
  await db
    .prepare(
      `INSERT INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, user_agent, ip, provider, amr, auth_time)
       VALUES (?, ?, ?, 'fam', ?, ?, ?, NULL, NULL, 'password', '["pwd"]', ?)`,
    )
    .bind(id, userId, await sha256(token), t - 3600, t + 86_400, t - 600, t - 3600)
    .run();
  return { userId, id, token };
}

describe('an old-shape refresh token rotated by its move to the object', () => {
  it('presented again after the grace is reuse: the session ends and the new token is refused', async () => {
    const { userId, id, token } = await userWithD1Session();
    const first = await refresh(token);
    expect(first.status).toBe(200);
    const moved = (await first.json()) as TokenResponse;
    await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 11 WHERE session_id = ?', [id], userId);

    const replay = await refresh(token);
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_token' });
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', id)).toBe(1);
    expect(await revokedKeys()).toContain(`sid:${id}`);
    expect(await countRows('auth_events', "event = 'refresh_token_reuse' AND user_id = ?", userId)).toBe(1);
    expect((await refresh(moved.refresh_token)).status).toBe(401);
  });

  it('presented again within the grace is a conflict, and the session lives', async () => {
    const { token } = await userWithD1Session();
    const moved = (await (await refresh(token)).json()) as TokenResponse;
    const again = await refresh(token);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: 'conflict' });
    expect((await refresh(moved.refresh_token)).status).toBe(200);
  });
});
