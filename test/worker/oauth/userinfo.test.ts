/**
 * The userinfo endpoint (OpenID Connect Core §5.3): a grant token for it, and nothing else,
 * answers with the claims its scope allows; refusals are RFC 6750's.
 */
import { describe, expect, it } from 'vitest';
import { bearer, call, makeEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { exchange, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';

async function tokenFor(scope: string, resource: string | null = null) {
  const { client, secret } = await seedClient({ allowedAudiences: resource ? [resource] : [] });
  const s = await signedInSession();
  const tokens = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope, resource }))).json<GrantTokenResponse>();
  return { s, token: tokens.access_token };
}

function expectBearerError(r: Response, error: string | null) {
  expect(r.status).toBe(401);
  const challenge = r.headers.get('www-authenticate')!;
  expect(challenge).toMatch(/^Bearer /);
  if (error === null) expect(challenge).not.toContain('error=');
  else expect(challenge).toContain(`error="${error}"`);
}

describe('userinfo', () => {
  it('answers sub alone for openid, and the address with the email scope, by GET and POST, not cached', async () => {
    const plain = await tokenFor('openid');
    const r = await call('/auth/userinfo', { headers: bearer(plain.token) });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(await r.json()).toEqual({ sub: plain.s.user.id });
    const withEmail = await tokenFor('openid email');
    const post = await call('/auth/userinfo', { method: 'POST', headers: bearer(withEmail.token) });
    expect(await post.json()).toEqual({ sub: withEmail.s.user.id, email: withEmail.s.user.email, email_verified: true });
  });

  it('without a token: 401 with a bare Bearer challenge', async () => {
    expectBearerError(await call('/auth/userinfo'), null);
    expectBearerError(await call('/auth/userinfo', { headers: { authorization: 'Basic abc' } }), null);
  });

  it('a session\'s own access token is refused (invalid_token): it is not a grant token', async () => {
    const s = await signedInSession();
    expectBearerError(await call('/auth/userinfo', { headers: bearer(s.access_token) }), 'invalid_token');
  });

  it('a grant token for a resource is refused: its audience is not userinfo', async () => {
    const { token } = await tokenFor('mcp', 'https://mcp.example.com/mcp');
    expectBearerError(await call('/auth/userinfo', { headers: bearer(token) }), 'invalid_token');
  });

  it('a disabled account\'s token is refused (invalid_token)', async () => {
    const { s, token } = await tokenFor('openid email');
    await makeEnv().DB.prepare('UPDATE users SET disabled_at = 1 WHERE id = ?').bind(s.user.id).run();
    expectBearerError(await call('/auth/userinfo', { headers: bearer(token) }), 'invalid_token');
  });

  it('answers any origin (CORS)', async () => {
    const { token } = await tokenFor('openid');
    const r = await call('/auth/userinfo', { headers: { ...bearer(token), origin: 'https://spa.example.net' } });
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
  });
});
