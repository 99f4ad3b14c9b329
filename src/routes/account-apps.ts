/**
 * The account page's apps (README "Apps (OpenID Connect)"): `POST /account/apps/:clientId/revoke`
 * withdraws the user's consent to an app and ends every grant it holds for this user
 * (auth/app-consents.ts, which the console uses too): the grants' access tokens are revoked in
 * KV, as a session's are, and the app must ask (and the user allow) again.
 */
import { Hono } from 'hono';
import { withdrawAppConsent } from '../auth/app-consents';
import type { AppEnv } from '../env';
import { browserAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { backToAccount } from './account-overview';

export const accountAppRoutes = new Hono<AppEnv>().post(
  '/account/apps/:clientId/revoke',
  sameOrigin({ always: true }),
  browserAuth((c) => `${c.get('config').AUTH_PREFIX}/account`),
  async (c) => {
    await withdrawAppConsent(c, c.get('user').id, c.req.param('clientId'), { user: true });
    return backToAccount(c, 'app_revoked');
  },
);
