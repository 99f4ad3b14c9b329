/**
 * Reuse detection holds across the move of a session from D1 to its user's object: a refresh
 * token of the old shape that was rotated by the move (by its owner or by a thief, whoever came
 * first) and is presented again after the grace is reuse, and ends the session: the other party's
 * new token stops working.
 */
import { describe, expect, it } from 'vitest';
import { call, countRows, revokedKeys, type TokenResponse } from '../support/helpers';
import { insertLegacySession, insertLegacyUser } from '../support/legacy-sessions';
import { sessionExec } from '../support/user-sessions-store';

const now = () => Math.floor(Date.now() / 1000);
const refresh = (refresh_token: string) => call('/auth/refresh', { json: { refresh_token } });

/** A user whose one session an earlier version stored in D1. */
async function userWithD1Session() {
  const { userId } = await insertLegacyUser('migrated');
  return { userId, ...(await insertLegacySession(userId)) };
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
