/**
 * `GET /auth/provider-tokens/:provider`: the signed-in user's current access token at that
 * provider (renewed first if it is about to expire), for services that call the provider's
 * API on the user's behalf. Only with `STORE_PROVIDER_TOKENS=true`; never the refresh token.
 */
import { Hono } from 'hono';
import { currentProviderTokens } from '../auth/oauth-provider-tokens';
import type { AppEnv } from '../env';
import { requireAuth } from '../middleware/require-auth';

export const providerTokenRoutes = new Hono<AppEnv>().get('/provider-tokens/:provider', requireAuth(), async (c) => {
  const provider = c.req.param('provider');
  const tokens = await currentProviderTokens(c, c.get('user').id, provider);
  c.header('cache-control', 'no-store');
  return c.json({
    provider,
    token_type: 'Bearer',
    access_token: tokens.accessToken,
    expires_at: tokens.expiresAt,
    scope: tokens.scopes.join(' '),
  });
});
