/**
 * Account deletion ends every session in the user's object, then empties it, then deletes the
 * D1 rows. Sessions an earlier version stored in D1 still read as live there (the object, not
 * D1, recorded their end): an emptied object must not copy them in again, or a refresh with an
 * old token between the two steps (or after a failed D1 delete) brings an ended session back.
 */
import { describe, expect, it } from 'vitest';
import { call } from '../support/helpers';
import { insertLegacySession, insertLegacyUser } from '../support/legacy-sessions';
import { sessionsObject } from '../support/user-sessions-store';

const now = () => Math.floor(Date.now() / 1000);

/** A user whose one session an earlier version stored in D1. */
async function userWithD1Session() {
  const { userId } = await insertLegacyUser('forgotten');
  return { userId, ...(await insertLegacySession(userId)) };
}

describe('an emptied sessions object', () => {
  it('does not copy in again the D1 sessions it had ended: their old tokens stay refused', async () => {
    const { userId, id, token } = await userWithD1Session();
    const object = sessionsObject(userId);
    const { ended } = await object.endAll(userId, now(), 610);
    expect(ended).toEqual([id]);
    await object.forget(userId);
    // The D1 row is still there (the account's D1 delete has not run yet, or failed).
    const r = await call('/auth/refresh', { json: { refresh_token: token } });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
    expect(await object.isRevoked(userId, id)).toBe(true);
  });
});
