/**
 * The authorization server's back channel (README "Apps (OpenID Connect)", "Machines"): the
 * token endpoint (RFC 6749 §3.2, the grants of routes/token-grants.ts), token revocation (RFC 7009),
 * introspection (RFC 7662, confidential clients only) and userinfo (OpenID Connect Core §5.3).
 *
 * Every answer is `Cache-Control: no-store` (and `Pragma: no-cache`, RFC 6749 §5.1). Token,
 * revocation and userinfo answer any origin's CORS request (app-lazy.ts): they read no cookie,
 * only what the request itself carries, so a browser app (a public client with PKCE) may call
 * them, and no page can use them with the user's ambient credentials. Introspection is
 * server-to-server and has no CORS.
 */
import { Hono, type Context } from 'hono';
import { userForTokenClaims } from '../auth/directory-reads';
import { authenticateGrantToken } from '../auth/grant-authenticate';
import { introspectToken, revokeClientToken } from '../auth/grant-tokens';
import { userinfoUrl } from '../config/oauth-endpoints';
import type { AppEnv } from '../env';
import { ApiError, invalidToken } from '../http/errors';
import { basicChallenge, readOAuthForm, requestClient, required } from './oauth-request';
import { grantHandler } from './token-grants';

function noStore(c: Context<AppEnv>) {
  c.header('cache-control', 'no-store');
  c.header('pragma', 'no-cache');
}

/** RFC 6750 §2.1: the access token of `Authorization: Bearer`; a request without one is told to send one (§3.1: no error code). */
function bearerToken(c: Context<AppEnv>): string {
  const header = c.req.header('authorization');
  const match = header === undefined ? null : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  if (!match) {
    throw new ApiError('invalid_token', 'Send the access token as Authorization: Bearer.', { headers: { 'www-authenticate': `Bearer realm="${c.get('config').PUBLIC_URL}"` } });
  }
  return match[1]!;
}

async function userinfo(c: Context<AppEnv>) {
  noStore(c);
  const claims = await authenticateGrantToken(c, bearerToken(c), [userinfoUrl(c.get('config'))], true);
  const user = await userForTokenClaims(c, claims.sub);
  if (!user || user.disabledAt !== null) throw invalidToken('The access token is invalid: its account is disabled or gone.');
  const scope = claims.scope.split(' ');
  return c.json({ sub: user.id, ...(scope.includes('email') ? { email: user.email, email_verified: user.emailVerified } : {}) });
}

export const oauthTokenRoutes = new Hono<AppEnv>()
  .post('/token', async (c) => {
    noStore(c);
    const form = await readOAuthForm(c);
    const { type, handle } = grantHandler(required(form, 'grant_type'));
    const client = await requestClient(c, form);
    if (!client.grantTypes.includes(type)) throw new ApiError('unauthorized_client', `This client may not use the ${type} grant.`);
    return handle(c, client, form);
  })
  .post('/revoke', async (c) => {
    noStore(c);
    const form = await readOAuthForm(c);
    const client = await requestClient(c, form);
    await revokeClientToken(c, client, required(form, 'token'), form.get('token_type_hint'));
    return c.body(null, 200);
  })
  .post('/introspect', async (c) => {
    noStore(c);
    const form = await readOAuthForm(c);
    const client = await requestClient(c, form);
    if (client.kind !== 'confidential' || client.authMethod === 'none') {
      throw new ApiError('invalid_client', 'Only confidential clients may introspect tokens.', { headers: { 'www-authenticate': basicChallenge(c) } });
    }
    return c.json(await introspectToken(c, client, required(form, 'token')));
  })
  .get('/userinfo', userinfo)
  .post('/userinfo', userinfo);
