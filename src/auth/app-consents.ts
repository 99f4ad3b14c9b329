/**
 * The consents a user gave to apps (the consent page's "Allow"), and withdrawing one: one home
 * for the account page's "Revoke" (routes/account-apps.ts, the user themself) and the console's
 * Apps and machines area (routes/console-apps.ts, an admin). A consent lives in the user's own
 * sessions object beside the grants it led to; withdrawing it ends every grant of that app for
 * the user in the same transaction, and the grants' access tokens are revoked in KV by their
 * grant ids, as a session's are: the app must ask (and the user allow) again.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { findClientById } from '../storage/oauth-clients';
import { revokeSessionIds } from '../storage/revocation';
import { listConsents, withdrawConsent } from '../storage/sessions';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { isMetadataDocumentUrl } from './client-id-metadata';
import { recordEvent } from './events';
import { tokenLifetime } from './sessions';

/** One consent: the app (its name while it is registered, else its id), the scopes and resources allowed, and when. */
export interface AppConsent {
  clientId: string;
  name: string;
  /** False once the client is no longer registered (one known by its metadata document's URL never is in D1, and is not gone). */
  registered: boolean;
  scopes: string[];
  resources: string[];
  grantedAt: number;
}

/** The apps the user allowed, most recent first. */
export async function consentedApps(c: Context<AppEnv>, userId: string): Promise<AppConsent[]> {
  const consents = await listConsents(sessionsOf(c, userId));
  return Promise.all(
    consents.map(async (k) => {
      const client = await findClientById(c.env.DB, k.client_id);
      return {
        clientId: k.client_id,
        name: client?.name ?? k.client_id,
        // An app known by its metadata document's URL is in no table: it is not gone.
        registered: client !== null || isMetadataDocumentUrl(k.client_id),
        scopes: k.scope.split(' ').filter(Boolean),
        resources: k.resources.split(' ').filter(Boolean),
        grantedAt: k.granted_at,
      };
    }),
  );
}

/**
 * The apps the user allowed, as an admin looks at them (the console): recorded as
 * `admin_consents_viewed` naming the admin, as looking at the user is (which apps someone uses
 * is theirs to know about).
 */
export async function viewConsents(c: Context<AppEnv>, userId: string, admin: string): Promise<AppConsent[]> {
  const consents = await consentedApps(c, userId);
  await recordEvent(c, { event: 'admin_consents_viewed', outcome: 'success', userId, detail: { admin } });
  return consents;
}

/** Who withdraws a consent: the user on their account page, or an admin in the console. */
export type ConsentWithdrawer = { user: true } | { admin: string };

/**
 * Withdraws the user's consent to `clientId` and ends every grant that app holds for them (their
 * refresh tokens in the user's object, their access tokens by grant id in KV); audited
 * (`oauth_consent_revoked` by the user, `admin_consent_revoked` naming the admin). 404 when
 * there is neither a consent nor a live grant. Returns how many grants ended.
 */
export async function withdrawAppConsent(c: Context<AppEnv>, userId: string, clientId: string, by: ConsentWithdrawer): Promise<number> {
  if (clientId.length > 256) throw new ApiError('not_found', 'No such app.');
  const { hadConsent, grantIds, withLiveTokens } = await withdrawConsent(sessionsOf(c, userId), clientId, now(), tokenLifetime(c));
  // Each grant id is a revocation key of its tokens (tokens/grant-token.ts): they end everywhere.
  // Grants ended a moment ago are revoked again, even when nothing is left to withdraw: a
  // retry after a failed KV write must not leave their access tokens working.
  if (withLiveTokens.length > 0) await revokeSessionIds(c.env.REVOKED, withLiveTokens, c.get('config').ACCESS_TOKEN_TTL);
  if (!hadConsent && grantIds.length === 0) throw new ApiError('not_found', 'No such app.');
  if ('admin' in by) {
    await recordEvent(c, { event: 'admin_consent_revoked', outcome: 'success', userId, detail: { admin: by.admin, client_id: clientId, grants: grantIds.length } });
  } else {
    await recordEvent(c, { event: 'oauth_consent_revoked', outcome: 'success', userId, detail: { client_id: clientId, grants: grantIds.length, via: 'account_page' } });
  }
  return grantIds.length;
}
