/**
 * Who the client is: finding a registered client and checking how it authenticates at the
 * token, revocation and introspection endpoints (RFC 6749 §2.3, OpenID Connect Core §9).
 * Secrets are compared as SHA-256 hashes with a constant-time comparison; a rotated secret
 * counts until the end of its overlap. A private_key_jwt client proves itself with a signed
 * assertion (auth/client-assertion.ts) and nothing else.
 */
import type { Context } from 'hono';
import * as base64url from 'jose/base64url';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { findClientById, type OAuthClient } from '../storage/oauth-clients';
import { verifyClientAssertion } from './client-assertion';
import { clientFromMetadataDocument, isMetadataDocumentUrl, metadataDocumentsEnabled } from './client-id-metadata';
import { sha256 } from '../util/random';
import { nowSeconds } from '../util/time';

export type { OAuthClient };

/** Client ids the gateway issues, and the longest any client id may be. */
export const CLIENT_ID_MAX = 256;

/**
 * The enabled client with this id, or null (unknown, disabled, or not an id at all). An id
 * that is an https URL names a client ID metadata document (auth/client-id-metadata.ts),
 * fetched when those are on (CLIENT_ID_METADATA_DOCUMENTS).
 */
export async function findClient(c: Context<AppEnv>, clientId: string): Promise<OAuthClient | null> {
  if (clientId.length === 0 || clientId.length > CLIENT_ID_MAX) return null;
  if (isMetadataDocumentUrl(clientId)) return metadataDocumentsEnabled(c.get('config')) ? clientFromMetadataDocument(c, clientId) : null;
  const client = await findClientById(c.env.DB, clientId);
  return client && client.disabledAt === null ? client : null;
}

/** What a request presented to authenticate a client. */
export interface ClientCredentials {
  clientId: string;
  /** The secret, from HTTP Basic or the form's `client_secret`; absent for public clients. */
  secret?: string;
  /** How it came: `client_secret_basic`, `client_secret_post`, or `none` (only a `client_id`). */
  method: 'client_secret_basic' | 'client_secret_post' | 'none' | 'private_key_jwt';
  /** A `client_assertion` (private_key_jwt), when that is how it came. */
  assertion?: string;
}

/** True when the two equal-length byte strings are equal, compared in constant time. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

/** True if `secret` is the client's current secret, or its previous one within the overlap. */
export async function secretMatches(client: OAuthClient, secret: string, now = nowSeconds()): Promise<boolean> {
  const presented = base64url.decode(await sha256(secret));
  const current = client.secretHash !== null && sameBytes(presented, base64url.decode(client.secretHash));
  const previous =
    client.previousSecretHash !== null &&
    client.previousSecretExpiresAt !== null &&
    client.previousSecretExpiresAt > now &&
    sameBytes(presented, base64url.decode(client.previousSecretHash));
  return current || previous;
}

/** RFC 6749 §5.2 `invalid_client`: one answer for every way authentication fails. */
export const invalidClient = () => new ApiError('invalid_client', 'Client authentication failed.');

/**
 * The client `credentials` authenticate, or `invalid_client`: an enabled client, presenting
 * the way it was registered to (a confidential client never passes as public), with a secret
 * that matches.
 */
export async function authenticateClient(c: Context<AppEnv>, credentials: ClientCredentials): Promise<OAuthClient> {
  const client = await findClient(c, credentials.clientId);
  if (!client) throw invalidClient();
  if (client.authMethod === 'none') {
    if (credentials.method !== 'none') throw invalidClient();
    return client;
  }
  if (client.authMethod === 'private_key_jwt') {
    // Its keys are what proves it: a secret (even alongside the assertion) is refused.
    if (credentials.method !== 'private_key_jwt' || credentials.assertion === undefined || credentials.secret !== undefined) throw invalidClient();
    if (!(await verifyClientAssertion(c, client, credentials.assertion))) throw invalidClient();
    return client;
  }
  // client_secret_basic and client_secret_post: either way of sending the secret is accepted
  // (OpenID Connect Core §9 names the registered one; the secret is what proves the client).
  if (credentials.method !== 'client_secret_basic' && credentials.method !== 'client_secret_post') throw invalidClient();
  if (credentials.secret === undefined || !(await secretMatches(client, credentials.secret))) throw invalidClient();
  return client;
}
