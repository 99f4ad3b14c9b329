/**
 * `POST /auth/backchannel-logout/:provider`: the `backchannel_logout_uri` to register at an
 * OpenID Connect sign-in provider (README "Provider-initiated sign-out"). A form post of
 * `logout_token` (OpenID Connect Back-Channel Logout 1.0 §2.5), answered 200 with an empty
 * body once the token is verified and the sessions it names are ended (none is fine), 400
 * `invalid_request` when it is refused (§2.8); never cached. Plain OAuth 2.0 providers
 * (GitHub) have no logout tokens: 404, as for an unknown provider.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { acceptProviderLogout, refuseProviderLogout } from '../auth/provider-logout';
import type { AppEnv } from '../env';
import { bodyText } from '../http/body';
import { ApiError } from '../http/errors';
import { checkRateLimit } from '../middleware/rate-limit';
import { findProvider } from '../providers/registry';

/** A form with one logout token: the token's bound and room for a parameter or two more. */
const MAX_BODY_BYTES = 16 * 1024; // MAX_LOGOUT_TOKEN_CHARS is 8192

export const providerLogoutRoutes = new Hono<AppEnv>().post(
  '/backchannel-logout/:provider',
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: async (c) => {
      await checkRateLimit(c, 'oauth');
      throw new ApiError('payload_too_large', 'The request body is too large (16 KiB at most).');
    },
  }),
  async (c) => {
    // Every refusal (4xx) counts against the client's `oauth` limit (with the provider sign-ins),
    // before anything is recorded; a token the provider signed always passes, so nobody sharing
    // the provider's address (or a burst of its own logouts) can hold its logouts back.
    const countRefusal = () => checkRateLimit(c, 'oauth');
    const provider = findProvider(c.get('config'), c.req.param('provider'));
    if (provider === null || provider.protocol !== 'oidc') {
      await countRefusal();
      throw new ApiError('not_found', 'No provider here sends logout tokens under this name.');
    }
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      await countRefusal();
      throw new ApiError('unsupported_media_type', 'Send the logout token as application/x-www-form-urlencoded.');
    }
    const tokens = new URLSearchParams(await bodyText(c)).getAll('logout_token');
    if (tokens.length !== 1 || tokens[0] === '') return refuseProviderLogout(c, provider, countRefusal, 'no_token', `${tokens.length} logout_token parameters`);
    // Its length is bounded (and a refusal audited) where it is verified: MAX_LOGOUT_TOKEN_CHARS.
    await acceptProviderLogout(c, provider, tokens[0]!, countRefusal);
    c.header('cache-control', 'no-store');
    return c.body(null, 200);
  },
);
