/**
 * The authorization-code grant at the token endpoint: a code is spent once, by its client, with
 * its exact redirect URI and PKCE verifier, in time, on a live session of an enabled account;
 * a code presented again ends what its first exchange issued.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, countRows, makeEnv, PUBLIC_URL, revokedKeys } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { basic, exchange, grantRows, newVerifier, postForm, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';

const USERINFO = `${PUBLIC_URL}/auth/userinfo`;

async function refused(r: Response, error: string) {
  expect(r.status, await r.clone().text()).toBe(400);
  expect(await r.json()).toEqual({ error, error_description: expect.any(String) });
}

describe('exchanging an authorization code', () => {
  it('gives an access token for the userinfo endpoint carrying the session (its sign-in time and methods), the grant and the client epoch, and creates the grant', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client, { scope: 'openid email offline_access' });
    const session = decodeJwt(s.access_token);
    const r = await exchange(client, secret, code);
    expect(r.status, await r.clone().text()).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('pragma')).toBe('no-cache');
    const body = await r.json<GrantTokenResponse>();
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'openid email offline_access', expires_in: 600 });
    expect(body.refresh_token).toMatch(new RegExp(`^${s.user.id}\\.[A-Za-z0-9_-]{43}$`));
    const claims = decodeJwt(body.access_token);
    const [grant] = await grantRows(s.user.id);
    expect(claims).toMatchObject({ iss: PUBLIC_URL, aud: USERINFO, sub: s.user.id, sid: s.sessionId, gid: grant!.id, client_id: client.id, cep: client.tokenEpoch, auth_time: session.auth_time, amr: ['pwd'] });
    expect(grant).toMatchObject({ session_id: s.sessionId, client_id: client.id, scope: 'openid email offline_access', resource: null, revoked_at: null });
    expect(grant!.id).toMatch(/^grt_/);
    expect(grant!.refresh_hash).not.toBeNull();
  });

  it('a code for a resource gives a token for that resource', async () => {
    const { client, secret } = await seedClient({ allowedAudiences: ['https://mcp.example.com/mcp'] });
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client, { scope: 'mcp', resource: 'https://mcp.example.com/mcp' });
    const body = await (await exchange(client, secret, code, { resource: 'https://mcp.example.com/mcp' })).json<GrantTokenResponse>();
    expect(decodeJwt(body.access_token).aud).toBe('https://mcp.example.com/mcp');
  });

  it('another resource at the exchange than the code was issued for is invalid_target, and the grant ends', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client, { scope: 'mcp', resource: 'https://mcp.example.com/mcp' });
    await refused(await exchange(client, secret, code, { resource: 'https://other.example.com/mcp' }), 'invalid_target');
    expect((await grantRows(s.user.id)).every((g) => g.revoked_at !== null)).toBe(true);
  });

  it('a refresh token comes with offline_access or a plain OAuth request (no openid), never to a client without the refresh grant', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const openid = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid' }))).json<GrantTokenResponse>();
    expect(openid.refresh_token).toBeUndefined();
    const plain = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'profile' }))).json<GrantTokenResponse>();
    expect(plain.refresh_token).toBeDefined();
    expect(plain.id_token).toBeUndefined();
    const { client: noRefresh, secret: s2 } = await seedClient({ grantTypes: ['authorization_code'] });
    const none = await (await exchange(noRefresh, s2, await storeCode(s.user.id, s.sessionId, noRefresh, { scope: 'openid offline_access' }))).json<GrantTokenResponse>();
    expect(none.refresh_token).toBeUndefined();
  });

  it('a code presented again is refused and ends the first exchange\'s grant: its refresh token and access token stop working (a security event)', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client, { scope: 'openid email offline_access' });
    const first = await (await exchange(client, secret, code)).json<GrantTokenResponse>();
    expect((await call('/auth/userinfo', { headers: bearer(first.access_token) })).status).toBe(200);
    await refused(await exchange(client, secret, code), 'invalid_grant');
    const gid = decodeJwt(first.access_token).gid as string;
    expect(await revokedKeys()).toContain(`sid:${gid}`);
    expect((await grantRows(s.user.id))[0]!.revoked_at).not.toBeNull();
    const userinfo = await call('/auth/userinfo', { headers: bearer(first.access_token) });
    expect(userinfo.status).toBe(401);
    await refused(await postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token! }, basic(client.id, secret)), 'invalid_grant');
    expect(await countRows('auth_events', "event = 'authorization_code_replayed' AND outcome = 'security' AND user_id = ?", s.user.id)).toBe(1);
    // The gateway session itself is not the code's to end.
    expect((await call('/auth/me', { headers: bearer(s.access_token) })).status).toBe(200);
  });

  it('a wrong PKCE verifier is invalid_grant, and the code is spent', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client);
    await refused(await exchange(client, secret, { code: code.code, verifier: newVerifier() }), 'invalid_grant');
    await refused(await exchange(client, secret, code), 'invalid_grant');
    expect(await grantRows(s.user.id)).toEqual([]);
  });

  it('a missing or malformed code_verifier is invalid_request (PKCE is required of every client)', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client);
    const missing = await postForm('/auth/token', { grant_type: 'authorization_code', code: code.code, redirect_uri: client.redirectUris[0]! }, basic(client.id, secret));
    await refused(missing, 'invalid_request');
    await refused(await exchange(client, secret, { code: code.code, verifier: 'short' }), 'invalid_request');
    await refused(await exchange(client, secret, { code: code.code, verifier: `${'a'.repeat(42)}!` }), 'invalid_request');
    // The code is still good: a malformed request never reached it.
    expect((await exchange(client, secret, code)).status).toBe(200);
  });

  it('a redirect_uri that is not exactly the one of the authorization request is invalid_grant', async () => {
    const { client, secret } = await seedClient({ redirectUris: ['https://app.example.org/callback', 'https://app.example.org/other'] });
    const s = await signedInSession();
    for (const redirect of ['https://app.example.org/callback/', 'https://app.example.org/other', 'https://APP.example.org/callback']) {
      const code = await storeCode(s.user.id, s.sessionId, client);
      await refused(await exchange(client, secret, code, { redirect_uri: redirect }), 'invalid_grant');
    }
    expect(await grantRows(s.user.id)).toEqual([]);
  });

  it('another client\'s code is invalid_grant (a security event), and spent', async () => {
    const { client } = await seedClient();
    const { client: other, secret: otherSecret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client);
    const r = await postForm('/auth/token', { grant_type: 'authorization_code', code: code.code, redirect_uri: client.redirectUris[0]!, code_verifier: code.verifier }, basic(other.id, otherSecret));
    await refused(r, 'invalid_grant');
    expect(await countRows('auth_events', "event = 'authorization_code_refused' AND outcome = 'security' AND user_id = ?", s.user.id)).toBe(1);
    expect(await grantRows(s.user.id)).toEqual([]);
  });

  it('an expired code is invalid_grant', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    await refused(await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { expiresIn: -1 })), 'invalid_grant');
    expect(await grantRows(s.user.id)).toEqual([]);
  });

  it('a made-up code, or one of a user that does not exist, is invalid_grant', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    await refused(await exchange(client, secret, { code: `${s.user.id}.${'A'.repeat(43)}`, verifier: newVerifier() }), 'invalid_grant');
    await refused(await exchange(client, secret, { code: `usr_nobody.${'A'.repeat(43)}`, verifier: newVerifier() }), 'invalid_grant');
    await refused(await exchange(client, secret, { code: 'garbage', verifier: newVerifier() }), 'invalid_grant');
  });

  it('a code whose session has ended since is invalid_grant', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client);
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(s.access_token) })).status).toBe(200);
    await refused(await exchange(client, secret, code), 'invalid_grant');
  });

  it('a code of a disabled account is invalid_grant, and the grant it would create is ended', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client);
    await makeEnv().DB.prepare('UPDATE users SET disabled_at = 1 WHERE id = ?').bind(s.user.id).run();
    await refused(await exchange(client, secret, code), 'invalid_grant');
    expect((await grantRows(s.user.id)).every((g) => g.revoked_at !== null)).toBe(true);
  });
});
