/**
 * A grant lives on one of the user's gateway sessions, in that user's object: every way the
 * session ends ends its grants in the same transaction, the object's fence answers for grant
 * ids, and its alarm cleans the OAuth rows up.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { ENDED_SESSION_KEEP_S } from '../../../src/storage/user-sessions';
import { bearer, call } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { exchange, grantRows, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';
import { sessionExec, sessionRows, sessionsObject } from '../support/user-sessions-store';

const now = () => Math.floor(Date.now() / 1000);

/** A user signed in, with a grant of one client on that session; the grant's tokens. */
async function withGrant() {
  const { client, secret } = await seedClient();
  const s = await signedInSession();
  const tokens = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid offline_access' }))).json<GrantTokenResponse>();
  return { client, secret, s, tokens, gid: decodeJwt(tokens.access_token).gid as string };
}

const liveGrants = async (userId: string) => (await grantRows(userId)).filter((g) => g.revoked_at === null).length;

describe('a session that ends ends its grants', () => {
  it('sign-out', async () => {
    const { s } = await withGrant();
    expect(await liveGrants(s.user.id)).toBe(1);
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(s.access_token) })).status).toBe(200);
    expect(await liveGrants(s.user.id)).toBe(0);
  });

  it('ending every session', async () => {
    const { s } = await withGrant();
    expect((await call('/auth/logout-all', { method: 'POST', headers: bearer(s.access_token) })).status).toBe(200);
    expect(await liveGrants(s.user.id)).toBe(0);
  });

  it('a session refresh token\'s reuse, which ends the session', async () => {
    const { s } = await withGrant();
    expect((await call('/auth/refresh', { json: { refresh_token: s.refresh_token } })).status).toBe(200);
    await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 60', [], s.user.id);
    expect((await call('/auth/refresh', { json: { refresh_token: s.refresh_token } })).status).toBe(401);
    expect(await liveGrants(s.user.id)).toBe(0);
  });

  it('forgetting the account\'s sessions: the fence refuses the grant it no longer knows', async () => {
    const { s, gid } = await withGrant();
    const stub = sessionsObject(s.user.id);
    expect(await stub.isRevoked(s.user.id, gid)).toBe(false);
    await stub.forget(s.user.id);
    expect(await stub.isRevoked(s.user.id, gid)).toBe(true);
  });

  it('another session\'s end leaves the grant alone', async () => {
    const { s } = await withGrant();
    const second = await call('/auth/login', { json: { email: s.user.email, password: 'correct horse battery staple' } });
    const { access_token } = await second.json<{ access_token: string }>();
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(access_token) })).status).toBe(200);
    expect(await liveGrants(s.user.id)).toBe(1);
  });
});

describe('the object\'s fence answers for grant ids', () => {
  it('a live grant on a live session is not revoked; an ended, unknown or expired one, or one whose session ended, is', async () => {
    const { s, gid } = await withGrant();
    const stub = sessionsObject(s.user.id);
    expect(await stub.isRevoked(s.user.id, gid)).toBe(false);
    expect(await stub.isRevoked(s.user.id, 'grt_unknown')).toBe(true);
    await sessionExec('UPDATE oauth_grants SET expires_at = ? WHERE id = ?', [now() - 1, gid], s.user.id);
    expect(await stub.isRevoked(s.user.id, gid)).toBe(true);
    await sessionExec('UPDATE oauth_grants SET expires_at = ? WHERE id = ?', [now() + 600, gid], s.user.id);
    expect(await stub.isRevoked(s.user.id, gid)).toBe(false);
    // The session ends without its grants being touched (as a row of an earlier version might): still revoked.
    await sessionExec('UPDATE sessions SET revoked_at = ? WHERE id = ?', [now(), s.sessionId], s.user.id);
    expect(await stub.isRevoked(s.user.id, gid)).toBe(true);
  });

  it('so a grant ended in the object alone is refused at once where tokens are checked immediately (userinfo)', async () => {
    const { s, tokens, gid } = await withGrant();
    expect((await call('/auth/userinfo', { headers: bearer(tokens.access_token) })).status).toBe(200);
    await sessionExec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ?', [now(), gid], s.user.id);
    expect((await call('/auth/userinfo', { headers: bearer(tokens.access_token) })).status).toBe(401);
  });
});

describe('the alarm cleans up the OAuth rows', () => {
  it('codes a day past expiry, grants ended or expired a day ago and their rotated tokens; live grants, fresh codes and consents stay', async () => {
    const { client, secret, s, tokens, gid } = await withGrant();
    const userId = s.user.id;
    // A rotated token of the grant, an old code, a fresh code, a consent.
    expect((await call('/auth/token', { form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, headers: { authorization: `Basic ${btoa(`${client.id}:${secret}`)}` } })).status).toBe(200);
    await storeCode(userId, s.sessionId, client);
    await storeCode(userId, s.sessionId, client);
    const old = now() - ENDED_SESSION_KEEP_S - 60;
    await sessionExec("UPDATE oauth_codes SET expires_at = ? WHERE rowid = (SELECT MIN(rowid) FROM oauth_codes WHERE used_at IS NULL)", [old], userId);
    await sessionExec('INSERT INTO oauth_consents (client_id, scope, granted_at) VALUES (?, ?, ?)', [client.id, 'openid', old], userId);
    // A second grant, ended long ago.
    const second = await (await exchange(client, secret, await storeCode(userId, s.sessionId, client, { scope: 'profile' }))).json<GrantTokenResponse>();
    const endedGid = decodeJwt(second.access_token).gid as string;
    await sessionExec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ?', [old, endedGid], userId);
    await sessionExec('INSERT INTO oauth_rotated_tokens (hash, grant_id, rotated_at) VALUES (?, ?, ?)', ['old-hash', endedGid, old], userId);
    const stub = sessionsObject(userId);
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await grantRows(userId)).map((g) => g.id)).toEqual([gid]);
    expect(await sessionRows('SELECT grant_id FROM oauth_rotated_tokens', [], userId)).toEqual([{ grant_id: gid }]);
    // Codes: the used ones and the fresh one stay (not yet a day past expiry), the old one went.
    const codes = await sessionRows<{ expires_at: number }>('SELECT expires_at FROM oauth_codes', [], userId);
    expect(codes).toHaveLength(3);
    expect(codes.every((c) => c.expires_at > old)).toBe(true);
    expect(await sessionRows('SELECT client_id FROM oauth_consents', [], userId)).toEqual([{ client_id: client.id }]);
  });
});
