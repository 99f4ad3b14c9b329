/**
 * Token revocation (RFC 7009): a client ends its own grants by their refresh or access tokens;
 * another client's token, an unknown one, anything else: 200 and nothing done.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, revokedKeys } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { basic, exchange, grantRows, postForm, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';

async function withGrant() {
  const { client, secret } = await seedClient();
  const s = await signedInSession();
  const tokens = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid offline_access' }))).json<GrantTokenResponse>();
  return { client, secret, s, tokens, gid: decodeJwt(tokens.access_token).gid as string };
}

const revoke = (clientId: string, secret: string, form: Record<string, string>) => postForm('/auth/revoke', form, basic(clientId, secret));
const refreshWith = (clientId: string, secret: string, token: string) => postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: token }, basic(clientId, secret));

describe('revoking a token', () => {
  it('a refresh token ends its grant: the refresh token and the grant\'s access tokens stop working', async () => {
    const { client, secret, s, tokens, gid } = await withGrant();
    const r = await revoke(client.id, secret, { token: tokens.refresh_token!, token_type_hint: 'refresh_token' });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect((await grantRows(s.user.id))[0]!.revoked_at).not.toBeNull();
    expect(await revokedKeys()).toContain(`sid:${gid}`);
    expect((await refreshWith(client.id, secret, tokens.refresh_token!)).status).toBe(400);
    expect((await call('/auth/userinfo', { headers: bearer(tokens.access_token) })).status).toBe(401);
    // The user's gateway session is not the client's to end.
    expect((await call('/auth/me', { headers: bearer(s.access_token) })).status).toBe(200);
  });

  it('an access token ends its grant (gid revoked), whatever the hint says', async () => {
    const { client, secret, s, tokens, gid } = await withGrant();
    expect((await revoke(client.id, secret, { token: tokens.access_token, token_type_hint: 'refresh_token' })).status).toBe(200);
    expect(await revokedKeys()).toContain(`sid:${gid}`);
    expect((await grantRows(s.user.id))[0]!.revoked_at).not.toBeNull();
    expect((await refreshWith(client.id, secret, tokens.refresh_token!)).status).toBe(400);
  });

  it('another client\'s tokens: 200, nothing done', async () => {
    const { tokens, s, gid, client, secret } = await withGrant();
    const { client: other, secret: otherSecret } = await seedClient();
    expect((await revoke(other.id, otherSecret, { token: tokens.refresh_token! })).status).toBe(200);
    expect((await revoke(other.id, otherSecret, { token: tokens.access_token })).status).toBe(200);
    expect((await grantRows(s.user.id))[0]!.revoked_at).toBeNull();
    expect(await revokedKeys()).not.toContain(`sid:${gid}`);
    expect((await refreshWith(client.id, secret, tokens.refresh_token!)).status).toBe(200);
  });

  it('an unknown token, a session\'s own token, an unknown hint: 200, nothing done', async () => {
    const { client, secret, s } = await withGrant();
    const before = await revokedKeys();
    const forms: Record<string, string>[] = [{ token: 'nonsense' }, { token: `${s.user.id}.${'A'.repeat(43)}` }, { token: s.access_token }, { token: s.refresh_token }, { token: 'x', token_type_hint: 'something_else' }];
    for (const form of forms) {
      expect((await revoke(client.id, secret, form)).status).toBe(200);
    }
    expect(await revokedKeys()).toEqual(before);
    expect((await call('/auth/me', { headers: bearer(s.access_token) })).status).toBe(200);
  });

  it('needs client authentication (invalid_client) and a token (invalid_request)', async () => {
    const { client, secret, tokens } = await withGrant();
    const anonymous = await postForm('/auth/revoke', { token: tokens.refresh_token! });
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json<{ error: string }>()).error).toBe('invalid_client');
    const wrong = await revoke(client.id, `${secret}x`, { token: tokens.refresh_token! });
    expect(wrong.status).toBe(401);
    const missing = await revoke(client.id, secret, {});
    expect(missing.status).toBe(400);
    expect((await missing.json<{ error: string }>()).error).toBe('invalid_request');
    expect((await refreshWith(client.id, secret, tokens.refresh_token!)).status).toBe(200);
  });
});
