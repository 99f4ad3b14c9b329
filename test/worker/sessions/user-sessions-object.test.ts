/// <reference types="vite/client" />
/**
 * Each user's sessions in their own Durable Object (storage/user-sessions.ts), the real one in
 * workerd: rotation as one transaction inside it (parallel refreshes, the two-tab grace, reuse),
 * refresh tokens that name their object (a wrong pairing, malformed tokens that reach no object),
 * the object's own housekeeping (alarms), and the upgrade of sessions an earlier version kept in D1.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { ENDED_SESSION_KEEP_S } from '../../../src/storage/user-sessions';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { randomId, sha256 } from '../../../src/util/random';
import { baseEnv, bearer, call, countRows, makeEnv, PUBLIC_URL, registerUser, revokedKeys, testKey, type TokenResponse } from '../support/helpers';
import { recordingSessions, sessionExec, sessionRow, sessionsObject } from '../support/user-sessions-store';
import { insertLegacySession, insertLegacyUser } from '../support/legacy-sessions';

const now = () => Math.floor(Date.now() / 1000);
const refresh = (refresh_token: string, e?: ReturnType<typeof makeEnv>) => call('/auth/refresh', { json: { refresh_token }, env: e });
const sidOf = (t: { access_token: string }) => decodeJwt<{ sid: string }>(t.access_token).sid;
const INVALID = { error: 'invalid_token', error_description: 'The refresh token is invalid, expired or revoked.' };

describe('rotation is one transaction in the user\'s object', () => {
  it('parallel refreshes of one token: exactly one winner, the others conflict within the grace; after it, the old token ends the session', async () => {
    const t = await registerUser();
    const results = await Promise.all(Array.from({ length: 8 }, () => refresh(t.refresh_token)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expect(await r.json()).toMatchObject({ error: 'conflict' });
    const winner = (await results.find((r) => r.status === 200)!.json()) as TokenResponse;
    // One rotation: one rotated record, the session live with the winner's token.
    expect(await countRows('rotated_refresh_tokens', 'session_id = ?', sidOf(t))).toBe(1);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NULL', sidOf(t))).toBe(1);
    // Past the grace, the old token again is a theft: the session ends, the winner's token too.
    await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 11 WHERE session_id = ?', [sidOf(t)]);
    const reuse = await refresh(t.refresh_token);
    expect(reuse.status).toBe(401);
    expect(await reuse.json()).toEqual(INVALID);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', sidOf(t))).toBe(1);
    expect(await revokedKeys()).toContain(`sid:${sidOf(t)}`);
    expect((await refresh(winner.refresh_token)).status).toBe(401);
    expect(await countRows('auth_events', "event = 'refresh_token_reuse' AND user_id = ?", t.user.id)).toBe(1);
  });
});

describe('refresh tokens name their object', () => {
  it('a wrong pairing (another user\'s id with a real secret) is refused like any bad token, and changes nothing', async () => {
    const a = await registerUser();
    const b = await registerUser();
    const secretOfA = a.refresh_token.split('.')[1]!;
    const r = await refresh(`${b.user.id}.${secretOfA}`);
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual(INVALID);
    // Neither session moved: both tokens still refresh.
    expect((await refresh(a.refresh_token)).status).toBe(200);
    expect((await refresh(b.refresh_token)).status).toBe(200);
  });

  it('malformed, truncated and foreign tokens are refused without touching any object', async () => {
    const t = await registerUser();
    const calls: string[] = [];
    const e = makeEnv({ USER_SESSIONS: recordingSessions(calls) });
    const [routing, secret] = t.refresh_token.split('.') as [string, string];
    const bad = [
      `${routing}.${secret.slice(0, 42)}`, // truncated
      `${routing}.${secret}x`, // one too many
      `${routing}${secret}`, // no separator
      `${routing}.${secret}.${secret}`, // two parts after the id
      `acct_${routing.slice(4)}.${secret}`, // not one of our ids
      `.${secret}`, // no routing part
      `${routing}.${secret.slice(0, 40)}+/=`, // not base64url
      'x'.repeat(43), // the old shape, unknown to D1
      '',
    ];
    for (const token of bad) {
      const r = await refresh(token, e);
      expect(r.status, token).toBe(401);
      expect(await r.json()).toMatchObject({ error: 'invalid_token' });
    }
    expect(calls).toEqual([]);
    // The same binding does reach the object for a well-formed token.
    expect((await refresh(t.refresh_token, e)).status).toBe(200);
    expect(calls).toContain('rotate');
  });
});

describe('housekeeping is the object\'s own alarm', () => {
  it('deletes sessions ended or expired more than a day ago and their rotated tokens; keeps live and recently ended ones', async () => {
    const keep = await registerUser();
    const userId = keep.user.id;
    const stub = sessionsObject(userId);
    // Three more sessions of the same user: one ended long ago (rotated once), one expired long ago, one ended just now.
    const login = async () => (await (await call('/auth/login', { json: { email: keep.user.email, password: 'correct horse battery staple' } })).json()) as TokenResponse;
    const endedLongAgo = await login();
    const rotated = (await (await refresh(endedLongAgo.refresh_token)).json()) as TokenResponse;
    expect(sidOf(rotated)).toBe(sidOf(endedLongAgo));
    const expiredLongAgo = await login();
    const endedNow = await login();
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(endedNow.access_token) })).status).toBe(200);
    const old = now() - ENDED_SESSION_KEEP_S - 60;
    await sessionExec('UPDATE sessions SET revoked_at = ? WHERE id = ?', [old, sidOf(endedLongAgo)], userId);
    await sessionExec('UPDATE sessions SET expires_at = ? WHERE id = ?', [old, sidOf(expiredLongAgo)], userId);
    // An alarm is set whenever the object writes.
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const left = await sessionRowIds(userId);
    expect(left.sort()).toEqual([sidOf(keep), sidOf(endedNow)].sort());
    expect(await countRows('rotated_refresh_tokens', 'session_id = ?', sidOf(endedLongAgo))).toBe(0);
    // And the next cleanup is scheduled (the session ended just now goes a day after its end).
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).not.toBeNull();
  });
});

async function sessionRowIds(userId: string): Promise<string[]> {
  const row = await sessionRow<{ ids: string }>("SELECT group_concat(id, ',') AS ids FROM sessions", [], userId);
  return row?.ids ? row.ids.split(',') : [];
}

/**
 * Today's schema with a live session, as an earlier version stored it: a user whose object has
 * never been used, two sessions in D1 (one rotated once), each with a 43-character refresh token.
 */
async function seedLegacyUser() {
  const { userId, email } = await insertLegacyUser('legacy');
  const sessions = [] as { id: string; token: string; rotatedToken: string }[];
  for (let i = 0; i < 2; i++) {
    const { id, token } = await insertLegacySession(userId, { userAgent: 'Firefox', ip: '192.0.2.1' });
    const rotatedToken = randomId(32);
    await baseEnv.DB.prepare('INSERT INTO rotated_refresh_tokens (hash, session_id, rotated_at) VALUES (?, ?, ?)').bind(await sha256(rotatedToken), id, now() - 1800).run();
    sessions.push({ id, token, rotatedToken });
  }
  return { userId, email, sessions };
}

describe('upgrade: sessions an earlier version kept in D1 move to the user\'s object on their next refresh', () => {
  it('a refresh token of the old shape refreshes once, from the object, under the same session id; its D1 row stays only to route the old token to the object, nobody is signed out', async () => {
    const { userId, sessions } = await seedLegacyUser();
    const [first, second] = sessions as [(typeof sessions)[0], (typeof sessions)[0]];
    // An access token the earlier version issued for the first session keeps verifying.
    const ring = await keyringFromJwks({ keys: [testKey] });
    const before = await issueAccessToken(
      { keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
      { userId, sessionId: first.id, email: 'x@example.com', emailVerified: true, roles: [], amr: ['pwd'], authTime: now() - 3600, ttlSeconds: 600 },
    );
    expect((await call('/auth/me', { headers: bearer(before.token) })).status).toBe(200);

    const r = await refresh(first.token);
    expect(r.status).toBe(200);
    const moved = (await r.json()) as TokenResponse;
    expect(sidOf(moved)).toBe(first.id);
    expect(moved.refresh_token.startsWith(`${userId}.`)).toBe(true);
    expect(await baseEnv.DB.prepare('SELECT COUNT(*) AS n FROM sessions WHERE id = ?').bind(first.id).first('n')).toBe(1);
    expect((await refresh(first.token)).status).toBe(409);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NULL', first.id)).toBe(1);
    // The new token goes on refreshing; the old one is now a rotated token of the object.
    const again = (await (await refresh(moved.refresh_token)).json()) as TokenResponse;
    expect(sidOf(again)).toBe(first.id);
    expect((await call('/auth/me', { headers: bearer(before.token) })).status).toBe(200);

    // The other session was copied with the first touch and is listed; its old token still refreshes.
    const listed = (await (await call('/auth/sessions', { headers: bearer(again.access_token) })).json()) as { sessions: { id: string }[] };
    expect(listed.sessions.map((s) => s.id).sort()).toEqual([first.id, second.id].sort());
    const secondMoved = await refresh(second.token);
    expect(secondMoved.status).toBe(200);
    expect(sidOf((await secondMoved.json()) as TokenResponse)).toBe(second.id);
  });

  it('a token the earlier version had already rotated is reuse: the session ends', async () => {
    const { sessions } = await seedLegacyUser();
    const first = sessions[0]!;
    const r = await refresh(first.rotatedToken);
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual(INVALID);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', first.id)).toBe(1);
    expect(await revokedKeys()).toContain(`sid:${first.id}`);
    expect((await refresh(first.token)).status).toBe(401);
  });
});

describe('one way to a session', () => {
  const sources = import.meta.glob('../../../src/**/*.{ts,tsx}', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

  it('only the sign-in pipeline stores a session, and only storage/sessions.ts calls the object\'s create', () => {
    const storing = Object.entries(sources).filter(([, text]) => /\binsertSession\(/.test(text)).map(([key]) => key.replace('../../../src/', ''));
    expect(storing.sort()).toEqual(['auth/sign-in.ts', 'storage/sessions.ts']);
    const creating = Object.entries(sources).filter(([, text]) => /\.create\(store\.userId/.test(text)).map(([key]) => key.replace('../../../src/', ''));
    expect(creating).toEqual(['storage/sessions.ts']);
  });
});

describe('the revocation fence of earlier versions', () => {
  it('a session it still holds as revoked is refused by the object, until its entry expires', async () => {
    const t = await registerUser();
    const { sub, sid } = decodeJwt<{ sub: string; sid: string }>(t.access_token);
    const stub = sessionsObject(sub);
    expect(await stub.isRevoked(sub, sid)).toBe(false);
    // What the old class wrote (same object, renamed): a revocation whose D1 write had not landed.
    await runInDurableObject(stub, (_i, state) => state.storage.sql.exec('INSERT INTO revoked (sid, until_ms) VALUES (?, ?)', sid, Date.now() + 60_000));
    expect(await stub.isRevoked(sub, sid)).toBe(true);
    await runInDurableObject(stub, (_i, state) => state.storage.sql.exec('UPDATE revoked SET until_ms = ? WHERE sid = ?', Date.now() - 1, sid));
    expect(await stub.isRevoked(sub, sid)).toBe(false);
  });
});
