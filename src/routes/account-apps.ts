/**
 * The account page's apps (README "Apps (OpenID Connect)"): `POST /account/apps/:clientId/revoke`
 * withdraws the user's consent to an app and ends every grant it holds for this user, in one
 * transaction of the user's object; the grants' access tokens are revoked in KV, as a session's
 * are, and the app must ask (and the user allow) again.
 */
import { Hono } from 'hono';
import { sessionsOf } from '../auth/authenticate';
import { recordEvent } from '../auth/events';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { browserAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { revokeSessionIds } from '../storage/revocation';
import { withdrawConsent } from '../storage/sessions';
import { nowSeconds as now } from '../util/time';
import { backToAccount } from './account-overview';

export const accountAppRoutes = new Hono<AppEnv>().post(
  '/account/apps/:clientId/revoke',
  sameOrigin({ always: true }),
  browserAuth((c) => `${c.get('config').AUTH_PREFIX}/account`),
  async (c) => {
    const auth = c.get('user');
    const clientId = c.req.param('clientId');
    if (clientId.length > 256) throw new ApiError('not_found', 'No such app.');
    const { hadConsent, grantIds } = await withdrawConsent(sessionsOf(c, auth.id), clientId, now());
    if (!hadConsent && grantIds.length === 0) throw new ApiError('not_found', 'No such app.');
    // Each grant id is a revocation key of its tokens (tokens/grant-token.ts): they end everywhere.
    if (grantIds.length > 0) await revokeSessionIds(c.env.REVOKED, grantIds, c.get('config').ACCESS_TOKEN_TTL);
    await recordEvent(c, { event: 'oauth_consent_revoked', outcome: 'success', userId: auth.id, detail: { client_id: clientId, grants: grantIds.length, via: 'account_page' } });
    return backToAccount(c, 'app_revoked');
  },
);
