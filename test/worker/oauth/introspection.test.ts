/**
 * Token introspection (RFC 7662), for confidential clients: an access token is active only
 * while it verifies and is not revoked, and only for its own client or a client allowed its
 * audience; everything else is `{active:false}`.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, PUBLIC_URL } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { basic, exchange, postForm, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';

const MCP = 'https://mcp.example.com/mcp';

async function withGrant(resource: string | null = null) {
  const { client, secret } = await seedClient({ allowedAudiences: resource ? [resource] : [] });
  const s = await signedInSession();
  const tokens = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid offline_access', resource }))).json<GrantTokenResponse>();
  return { client, secret, s, tokens };
}

const introspect = async (clientId: string, secret: string, token: string) => {
  const r = await postForm('/auth/introspect', { token }, basic(clientId, secret));
  expect(r.status, await r.clone().text()).toBe(200);
  expect(r.headers.get('cache-control')).toBe('no-store');
  return r.json<Record<string, unknown>>();
};

describe('introspection', () => {
  it('an active token of the caller: active, scope, client_id, sub, aud, iss, exp, iat, token_type, sid', async () => {
    const { client, secret, s, tokens } = await withGrant();
    const claims = decodeJwt(tokens.access_token);
    expect(await introspect(client.id, secret, tokens.access_token)).toEqual({
      active: true,
      scope: 'openid offline_access',
      client_id: client.id,
      sub: s.user.id,
      aud: `${PUBLIC_URL}/auth/userinfo`,
      iss: PUBLIC_URL,
      exp: claims.exp,
      iat: claims.iat,
      token_type: 'Bearer',
      sid: s.sessionId,
    });
  });

  it('a client allowed the token\'s audience sees it active; any other client sees it inactive', async () => {
    const { tokens } = await withGrant(MCP);
    const { client: server, secret: serverSecret } = await seedClient({ allowedAudiences: [MCP] });
    expect((await introspect(server.id, serverSecret, tokens.access_token)).active).toBe(true);
    const { client: stranger, secret: strangerSecret } = await seedClient();
    expect(await introspect(stranger.id, strangerSecret, tokens.access_token)).toEqual({ active: false });
  });

  it('a revoked token (its grant ended, or its session), a refresh token, a session token, garbage: inactive', async () => {
    const { client, secret, s, tokens } = await withGrant();
    expect(await introspect(client.id, secret, tokens.refresh_token!)).toEqual({ active: false });
    expect(await introspect(client.id, secret, s.access_token)).toEqual({ active: false });
    expect(await introspect(client.id, secret, 'garbage')).toEqual({ active: false });
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(s.access_token) })).status).toBe(200);
    expect(await introspect(client.id, secret, tokens.access_token)).toEqual({ active: false });
    const second = await withGrant();
    expect((await postForm('/auth/revoke', { token: second.tokens.access_token }, basic(second.client.id, second.secret))).status).toBe(200);
    expect(await introspect(second.client.id, second.secret, second.tokens.access_token)).toEqual({ active: false });
  });

  it('a public client may not introspect: invalid_client, 401', async () => {
    const { tokens } = await withGrant();
    const { client: spa } = await seedClient({ kind: 'public', authMethod: 'none' });
    const r = await postForm('/auth/introspect', { token: tokens.access_token, client_id: spa.id });
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_client');
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });
});
