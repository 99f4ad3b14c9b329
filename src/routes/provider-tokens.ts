/**
 * `GET /auth/provider-tokens/:provider`: the signed-in user's current access token at that
 * provider (renewed first if it is about to expire), for services that call the provider's
 * API on the user's behalf. Only with `STORE_PROVIDER_TOKENS=true`; never the refresh token.
 *
 * Bearer token only, never the session cookie: the cookie reaches this path from every page the
 * gateway proxies (same origin), so any script on any proxied origin could otherwise read the
 * user's provider tokens. A service that needs them holds the user's access token already.
 */
import { Hono } from 'hono';
import { liveSessionUser } from '../auth/authenticate';
import { currentProviderTokens } from '../auth/oauth-provider-tokens';
import type { AppEnv } from '../env';
import { invalidToken } from '../http/errors';
import { requireAuth } from '../middleware/require-auth';

export const providerTokenRoutes = new Hono<AppEnv>().get('/provider-tokens/:provider', requireAuth(), async (c) => {
  if (c.get('authVia') !== 'bearer') {
    throw invalidToken('Provider tokens are handed out only for an Authorization: Bearer access token; the session cookie is not accepted here.');
  }
  const provider = c.req.param('provider');
  // A credential of the user's, not the token's: only for a session live in its object (a claim links the
  // owner's identity to an account whose squatter's ended session may still pass elsewhere).
  const user = await liveSessionUser(c, c.get('user'));
  const tokens = await currentProviderTokens(c, user.id, provider);
  c.header('cache-control', 'no-store');
  return c.json({
    provider,
    token_type: 'Bearer',
    access_token: tokens.accessToken,
    expires_at: tokens.expiresAt,
    scope: tokens.scopes.join(' '),
  });
});
