/**
 * The authorization server's grants in tests: authorization codes stored straight into the
 * user's object (as the authorize endpoint stores them, for a live session), the token
 * endpoint called as a client, and the object's OAuth rows read where they live.
 */
import { decodeJwt } from 'jose';
import type { OAuthClient } from '../../../src/storage/oauth-clients';
import type { AuthorizationCodeRow } from '../../../src/storage/user-sessions';
import type { OAuthGrantRow } from '../../../src/storage/user-sessions-grants';
import { randomId, sha256 } from '../../../src/util/random';
import { call, signedInUser, type TestEnv, type TokenResponse } from './helpers';
import { sessionRows, sessionsObject } from './user-sessions-store';

/** A signed-in user (token mode, a password sign-in) and the id of the session it started. */
export async function signedInSession(options: Parameters<typeof signedInUser>[0] = {}, env?: TestEnv): Promise<TokenResponse & { sessionId: string }> {
  const tokens = await signedInUser({ verified: true, ...options }, env);
  const sid = decodeJwt(tokens.access_token).sid;
  if (typeof sid !== 'string') throw new Error('no sid');
  return { ...tokens, sessionId: sid };
}

export interface CodeOptions {
  scope?: string;
  nonce?: string | null;
  resource?: string | null;
  redirectUri?: string;
  /** Seconds until it expires (negative: already expired). */
  expiresIn?: number;
}

/** A PKCE verifier (RFC 7636: 43 characters of the unreserved set). */
export const newVerifier = () => randomId(32);

/**
 * Stores an authorization code of `client` for the user's live session, as the authorize
 * endpoint does (the object adds the session's `auth_time` and `amr`); returns the code
 * (`<user id>.<secret>`) and its PKCE verifier.
 */
export async function storeCode(userId: string, sessionId: string, client: OAuthClient, o: CodeOptions = {}): Promise<{ code: string; verifier: string }> {
  const secret = randomId(32);
  const verifier = newVerifier();
  const now = Math.floor(Date.now() / 1000);
  const row: AuthorizationCodeRow = {
    hash: await sha256(secret),
    session_id: sessionId,
    client_id: client.id,
    redirect_uri: o.redirectUri ?? client.redirectUris[0]!,
    scope: o.scope ?? 'openid email',
    nonce: o.nonce === undefined ? 'n-0S6_WzA2Mj' : o.nonce,
    code_challenge: await sha256(verifier),
    resource: o.resource ?? null,
    created_at: now,
    expires_at: now + (o.expiresIn ?? 60),
  };
  if (!(await sessionsObject(userId).createAuthorizationCode(userId, row))) throw new Error('session not live');
  return { code: `${userId}.${secret}`, verifier };
}

/** HTTP Basic for a client (RFC 6749 §2.3.1: id and secret form-urlencoded first). */
export const basic = (clientId: string, secret: string) => ({ authorization: `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`)}` });

/** POSTs a form to a back-channel endpoint (`/auth/token`, `/auth/revoke`, `/auth/introspect`). */
export function postForm(path: string, form: Record<string, string>, headers: Record<string, string> = {}, env?: TestEnv): Promise<Response> {
  return call(path, { form, headers, env });
}

export interface GrantTokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
}

/** Exchanges a code at the token endpoint with the client's secret (Basic). */
export function exchange(client: OAuthClient, secret: string, code: { code: string; verifier: string }, extra: Record<string, string> = {}, env?: TestEnv): Promise<Response> {
  return postForm('/auth/token', { grant_type: 'authorization_code', code: code.code, redirect_uri: client.redirectUris[0]!, code_verifier: code.verifier, ...extra }, basic(client.id, secret), env);
}

/** A grant row as the user's object keeps it. */
export type GrantRow = OAuthGrantRow;

/** The user's grants, oldest first. */
export const grantRows = (userId: string) => sessionRows<GrantRow>('SELECT * FROM oauth_grants ORDER BY created_at, id', [], userId);
