/**
 * The refresh-token grant: rotation with reuse detection in the user's object, only for the
 * grant's client, scope that may only narrow, and nothing once the session has ended, the
 * account is disabled or the client is.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import type { OAuthClient } from '../../../src/storage/oauth-clients';
import { bearer, call, countRows, makeEnv, revokedKeys } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { basic, exchange, grantRows, postForm, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';
import { sessionExec } from '../support/user-sessions-store';

async function granted(scope = 'openid email offline_access') {
  const { client, secret } = await seedClient();
  const s = await signedInSession();
  const tokens = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope }))).json<GrantTokenResponse>();
  return { client, secret, s, tokens };
}

const refresh = (client: OAuthClient, secret: string, token: string, extra: Record<string, string> = {}) =>
  postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: token, ...extra }, basic(client.id, secret));

async function invalidGrant(r: Response) {
  expect(r.status, await r.clone().text()).toBe(400);
  expect((await r.json<{ error: string }>()).error).toBe('invalid_grant');
}

describe('refreshing a grant', () => {
  it('rotates the refresh token; the new access token keeps sid, gid, auth_time and amr; an ID token comes along for openid', async () => {
    const { client, secret, s, tokens } = await granted();
    const r = await refresh(client, secret, tokens.refresh_token!);
    expect(r.status, await r.clone().text()).toBe(200);
    const next = await r.json<GrantTokenResponse>();
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    expect(next.scope).toBe('openid email offline_access');
    const before = decodeJwt(tokens.access_token);
    expect(decodeJwt(next.access_token)).toMatchObject({ sid: s.sessionId, gid: before.gid, auth_time: before.auth_time, amr: ['pwd'], sub: s.user.id, client_id: client.id });
    expect(decodeJwt(next.id_token!)).toMatchObject({ sid: s.sessionId, aud: client.id });
    expect(await countRows('auth_events', "event = 'oauth_tokens_issued' AND user_id = ?", s.user.id)).toBe(2);
    // And again with the new one.
    expect((await refresh(client, secret, next.refresh_token!)).status).toBe(200);
  });

  it('a rotated token presented again within the grace is refused and ends nothing (two requests at once)', async () => {
    const { client, secret, tokens } = await granted();
    const next = await (await refresh(client, secret, tokens.refresh_token!)).json<GrantTokenResponse>();
    await invalidGrant(await refresh(client, secret, tokens.refresh_token!));
    expect((await refresh(client, secret, next.refresh_token!)).status).toBe(200);
  });

  it('a rotated token presented again after the grace ends the grant: its refresh token and access tokens stop working (a security event)', async () => {
    const { client, secret, s, tokens } = await granted();
    const next = await (await refresh(client, secret, tokens.refresh_token!)).json<GrantTokenResponse>();
    await sessionExec('UPDATE oauth_rotated_tokens SET rotated_at = rotated_at - 60', [], s.user.id);
    await invalidGrant(await refresh(client, secret, tokens.refresh_token!));
    const gid = decodeJwt(next.access_token).gid as string;
    expect(await revokedKeys()).toContain(`sid:${gid}`);
    await invalidGrant(await refresh(client, secret, next.refresh_token!));
    expect((await call('/auth/userinfo', { headers: bearer(next.access_token) })).status).toBe(401);
    expect(await countRows('auth_events', "event = 'oauth_refresh_token_reuse' AND outcome = 'security' AND user_id = ?", s.user.id)).toBe(1);
  });

  it('another client\'s refresh token is invalid_grant and changes nothing', async () => {
    const { client, secret, tokens } = await granted();
    const { client: other, secret: otherSecret } = await seedClient();
    await invalidGrant(await refresh(other, otherSecret, tokens.refresh_token!));
    expect((await refresh(client, secret, tokens.refresh_token!)).status).toBe(200);
  });

  it('may narrow the scope, which stays narrowed; a scope the grant does not have is invalid_scope', async () => {
    const { client, secret, tokens } = await granted();
    const wider = await refresh(client, secret, tokens.refresh_token!, { scope: 'openid email offline_access admin' });
    expect(wider.status).toBe(400);
    expect((await wider.json<{ error: string }>()).error).toBe('invalid_scope');
    const narrow = await (await refresh(client, secret, tokens.refresh_token!, { scope: 'offline_access openid' })).json<GrantTokenResponse>();
    expect(narrow.scope).toBe('openid offline_access');
    expect(decodeJwt(narrow.access_token).scope).toBe('openid offline_access');
    expect(decodeJwt(narrow.id_token!).email).toBeUndefined();
    const later = await (await refresh(client, secret, narrow.refresh_token!)).json<GrantTokenResponse>();
    expect(later.scope).toBe('openid offline_access');
    const back = await refresh(client, secret, later.refresh_token!, { scope: 'openid email' });
    expect((await back.json<{ error: string }>()).error).toBe('invalid_scope');
  });

  it('a resource other than the grant\'s is invalid_target and rotates nothing: no token for one server is handed out as another\'s', async () => {
    const { client, secret } = await seedClient({ allowedScopes: ['mcp'], allowedAudiences: ['https://mcp-a.example.com/mcp', 'https://mcp-b.example.com/mcp'] });
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client, { scope: 'mcp', resource: 'https://mcp-a.example.com/mcp' });
    const tokens = await (await exchange(client, secret, code)).json<GrantTokenResponse>();
    const other = await refresh(client, secret, tokens.refresh_token!, { resource: 'https://mcp-b.example.com/mcp' });
    expect(other.status, await other.clone().text()).toBe(400);
    expect((await other.json<{ error: string }>()).error).toBe('invalid_target');
    // A grant without a resource (userinfo) is asked for one just the same.
    const plain = await granted('profile');
    const named = await refresh(plain.client, plain.secret, plain.tokens.refresh_token!, { resource: 'https://mcp-a.example.com/mcp' });
    expect((await named.json<{ error: string }>()).error).toBe('invalid_target');
    // The refresh token was not spent: with its own resource, or none, it still rotates.
    const same = await refresh(client, secret, tokens.refresh_token!, { resource: 'https://mcp-a.example.com/mcp' });
    expect(same.status, await same.clone().text()).toBe(200);
    expect(decodeJwt((await same.json<GrantTokenResponse>()).access_token).aud).toBe('https://mcp-a.example.com/mcp');
    expect((await refresh(plain.client, plain.secret, plain.tokens.refresh_token!)).status).toBe(200);
  });

  it('mints only what the client\'s registration allows now: a scope taken away is dropped, a resource taken away ends the grant', async () => {
    const db = makeEnv().DB;
    const { client, secret, tokens } = await granted('openid email offline_access');
    await db.prepare('UPDATE oauth_clients SET allowed_scopes = ? WHERE id = ?').bind(JSON.stringify(['openid', 'offline_access']), client.id).run();
    const narrowed = await refresh(client, secret, tokens.refresh_token!);
    expect(narrowed.status, await narrowed.clone().text()).toBe(200);
    const body = await narrowed.json<GrantTokenResponse>();
    expect(body.scope).toBe('openid offline_access');
    expect(decodeJwt(body.access_token).scope).toBe('openid offline_access');
    expect(decodeJwt(body.id_token!).email).toBeUndefined();

    const mcp = await seedClient({ allowedScopes: ['mcp'], allowedAudiences: ['https://mcp.example.com/mcp'] });
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, mcp.client, { scope: 'mcp', resource: 'https://mcp.example.com/mcp' });
    const held = await (await exchange(mcp.client, mcp.secret, code)).json<GrantTokenResponse>();
    await db.prepare('UPDATE oauth_clients SET allowed_audiences = ? WHERE id = ?').bind('[]', mcp.client.id).run();
    await invalidGrant(await refresh(mcp.client, mcp.secret, held.refresh_token!));
    expect((await grantRows(s.user.id)).every((g) => g.revoked_at !== null)).toBe(true);

    // A grant asked for without any scope (OAuth allows it) has none to lose: it refreshes as before.
    const bare = await granted('');
    const again = await refresh(bare.client, bare.secret, bare.tokens.refresh_token!);
    expect(again.status, await again.clone().text()).toBe(200);
    expect((await again.json<GrantTokenResponse>()).scope).toBe('');
  });

  it('is refused once the user signed out everywhere', async () => {
    const { client, secret, s, tokens } = await granted();
    expect((await call('/auth/logout-all', { method: 'POST', headers: bearer(s.access_token) })).status).toBe(200);
    await invalidGrant(await refresh(client, secret, tokens.refresh_token!));
    expect((await grantRows(s.user.id)).every((g) => g.revoked_at !== null)).toBe(true);
    expect((await call('/auth/userinfo', { headers: bearer(tokens.access_token) })).status).toBe(401);
  });

  it('is refused once an admin disabled the account', async () => {
    const { client, secret, s, tokens } = await granted();
    const admin = await signedInSession({ roles: ['admin'] });
    const disable = await call(`/auth/admin/users/${s.user.id}/disable`, { method: 'POST', headers: bearer(admin.access_token) });
    expect(disable.status, await disable.clone().text()).toBe(200);
    await invalidGrant(await refresh(client, secret, tokens.refresh_token!));
    expect((await call('/auth/userinfo', { headers: bearer(tokens.access_token) })).status).toBe(401);
  });

  it('is refused for an account disabled in the directory alone, and the grant ends', async () => {
    const { client, secret, s, tokens } = await granted();
    await makeEnv().DB.prepare('UPDATE users SET disabled_at = 1 WHERE id = ?').bind(s.user.id).run();
    await invalidGrant(await refresh(client, secret, tokens.refresh_token!));
    expect((await grantRows(s.user.id))[0]!.revoked_at).not.toBeNull();
  });

  it('is refused once the client is disabled (invalid_client)', async () => {
    const { client, secret, tokens } = await granted();
    await makeEnv().DB.prepare('UPDATE oauth_clients SET disabled_at = 1 WHERE id = ?').bind(client.id).run();
    const r = await refresh(client, secret, tokens.refresh_token!);
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_client');
  });

  it('a refresh token from before the client was disabled stays dead once it is enabled again', async () => {
    const { client, secret, s, tokens } = await granted();
    const admin = await signedInSession({ roles: ['admin'] });
    for (const step of ['disable', 'enable']) {
      const r = await call(`/auth/admin/clients/${client.id}/${step}`, { method: 'POST', headers: bearer(admin.access_token) });
      expect(r.status, await r.clone().text()).toBe(200);
    }
    await invalidGrant(await refresh(client, secret, tokens.refresh_token!));
    expect((await grantRows(s.user.id)).every((g) => g.revoked_at !== null)).toBe(true);
    // A grant made after the enable works as any other.
    const fresh = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid offline_access' }))).json<GrantTokenResponse>();
    expect((await refresh(client, secret, fresh.refresh_token!)).status).toBe(200);
  });

  it('a session refresh token is not a grant\'s, nor a grant\'s a session\'s', async () => {
    const { client, secret, s, tokens } = await granted();
    await invalidGrant(await refresh(client, secret, s.refresh_token));
    const asSession = await call('/auth/refresh', { json: { refresh_token: tokens.refresh_token } });
    expect(asSession.status).toBe(401);
    // Both still work where they belong.
    expect((await refresh(client, secret, tokens.refresh_token!)).status).toBe(200);
    expect((await call('/auth/refresh', { json: { refresh_token: s.refresh_token } })).status).toBe(200);
  });
});
