/**
 * Who holds a grant token (tokens/grant-token.ts): its verification for the audiences a place
 * accepts (userinfo, a protected resource, a service audience), then revocation on each of its
 * keys (its session, its grant, its client's epoch) through the same KV list and per-isolate
 * cache as session tokens. `immediate` also asks the strongly consistent sources, never cached:
 * the user's object for a user's token (its session and its grant), and the clients table for
 * every token (a disabled client's tokens end at once there, a user's as a service's; a client
 * ID metadata document's client is stored nowhere and cannot be disabled).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { invalidToken } from '../http/errors';
import { isSessionRevoked } from '../storage/revocation';
import { findClientById } from '../storage/oauth-clients';
import { grantRevocationKeys, verifyGrantToken, type GrantClaims } from '../tokens/grant-token';
import { sessionsOf } from './authenticate';
import { isMetadataDocumentUrl } from './client-id-metadata';
import { recordEventInBackground } from './events';

export type { GrantClaims };

/**
 * The verified, unrevoked claims of `token` for one of `audiences`, or `invalid_token` (a
 * storage failure is a 503, never a pass).
 */
export async function authenticateGrantToken(c: Context<AppEnv>, token: string, audiences: readonly string[], immediate = false): Promise<GrantClaims> {
  const config = c.get('config');
  const claims = await verifyGrantToken(c.get('keyring'), config.PUBLIC_URL, audiences, token);
  const check = { cacheSeconds: config.REVOCATION_CACHE_SECONDS, tokenExpiresAt: claims.exp };
  const userFence = immediate && claims.svc !== true ? sessionsOf(c, claims.sub) : undefined;
  // The user's object knows the session and the grant; the client's key is KV's (and the clients table's, on an immediate route).
  const fenced = new Set([claims.sid, claims.gid]);
  const answers = await Promise.all([
    ...grantRevocationKeys(claims).map((key) => isSessionRevoked(c.env.REVOKED, key, { ...check, fence: userFence && fenced.has(key) ? userFence : undefined })),
    immediate && !isMetadataDocumentUrl(claims.client_id) ? clientEnded(c, claims) : false,
  ]);
  if (answers.some(Boolean)) {
    recordEventInBackground(c, { event: 'revoked_token_presented', outcome: 'security', userId: claims.svc ? null : claims.sub, detail: { sid: claims.sid, client_id: claims.client_id } });
    throw invalidToken('The access token has been revoked.');
  }
  return claims;
}

/** True if the token's client is gone, disabled, or on another epoch than the token's (the clients table). */
async function clientEnded(c: Context<AppEnv>, claims: GrantClaims): Promise<boolean> {
  const client = await findClientById(c.env.DB, claims.client_id);
  return !client || client.disabledAt !== null || client.tokenEpoch !== claims.cep;
}
