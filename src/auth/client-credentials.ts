/**
 * The client-credentials grant (RFC 6749 §4.4, README "Machines"): a confidential client,
 * already authenticated by the token endpoint (auth/oauth-clients.ts `authenticateClient`),
 * gets an access token of its own (`sub` = the client, `svc` true, no user, no refresh token)
 * for one audience it is allowed, with scopes it is allowed. The token is minted by the sign-in
 * pipeline (auth/sign-in.ts `issueServiceToken`), the one way to tokens.
 *
 * Errors, exactly as RFC 6749 §5.2 and RFC 8707 §2 name them: a client not registered for the
 * grant, or allowed no audience at all, is `unauthorized_client`; a scope it may not have, or
 * one only a user can grant (`openid`, `offline_access`), `invalid_scope`; an audience it may
 * not have, or none named where it has several, `invalid_target`.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import type { OAuthClient } from '../storage/oauth-clients';
import { issueServiceToken } from './sign-in';

/** Scopes that only a user's grant can carry: a service signs no one in and refreshes nothing. */
const USER_ONLY_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access']);

/** RFC 6749 §3.3 scope-token characters. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** The scopes a service may have: what the client is allowed, less the ones only a user can grant. */
export function serviceScopes(client: OAuthClient): string[] {
  return client.allowedScopes.filter((s) => !USER_ONLY_SCOPES.has(s));
}

/** The scope to issue: every one asked for, each allowed; none asked for is every allowed one. */
function grantedScope(client: OAuthClient, asked: string | null): string {
  const allowed = serviceScopes(client);
  if (asked === null) return allowed.join(' ');
  const scopes = [...new Set(asked.split(' ').filter(Boolean))];
  for (const scope of scopes) {
    if (!SCOPE_TOKEN.test(scope)) throw new ApiError('invalid_scope', 'The scope is malformed.');
    if (USER_ONLY_SCOPES.has(scope)) throw new ApiError('invalid_scope', `"${scope}" is for a user's sign-in; the client credentials grant has no user.`);
    if (!allowed.includes(scope)) throw new ApiError('invalid_scope', `This client may not have the scope "${scope}".`);
  }
  return scopes.join(' ');
}

/**
 * The audience to issue for: the `resource` (RFC 8707) or `audience` parameter, which must be
 * one of the client's allowed audiences; without either, the client's only allowed audience.
 */
function grantedAudience(client: OAuthClient, form: URLSearchParams): string {
  if (client.allowedAudiences.length === 0) throw new ApiError('unauthorized_client', 'This client is allowed no audience: it cannot get a service token.');
  const named = [...form.getAll('resource'), ...form.getAll('audience')];
  const distinct = [...new Set(named)];
  if (distinct.length > 1) throw new ApiError('invalid_target', 'Name one audience: a service token is for one resource.');
  const audience = distinct[0];
  if (audience === undefined) {
    if (client.allowedAudiences.length === 1) return client.allowedAudiences[0]!;
    throw new ApiError('invalid_target', 'This client is allowed several audiences: name one with the resource parameter.');
  }
  if (!client.allowedAudiences.includes(audience)) throw new ApiError('invalid_target', 'This client may not have a token for that resource.');
  return audience;
}

/**
 * `grant_type=client_credentials` at the token endpoint, for `client` (authenticated) and the
 * request's `form`: the token response (RFC 6749 §5.1), no refresh token.
 *
 * @example
 * if (grantType === 'client_credentials') return clientCredentialsGrant(c, client, form);
 */
export async function clientCredentialsGrant(c: Context<AppEnv>, client: OAuthClient, form: URLSearchParams): Promise<Response> {
  // A public client proves nothing about itself (RFC 6749 §4.4: confidential clients only).
  if (!client.grantTypes.includes('client_credentials') || client.kind !== 'confidential' || client.authMethod === 'none') {
    throw new ApiError('unauthorized_client', 'This client may not use the client credentials grant.');
  }
  const audience = grantedAudience(client, form);
  const scope = grantedScope(client, form.get('scope'));
  const issued = await issueServiceToken(c, client, { audience, scope });
  c.header('cache-control', 'no-store');
  c.header('pragma', 'no-cache');
  return c.json({ access_token: issued.token, token_type: 'Bearer', expires_in: issued.expiresIn, scope: issued.scope });
}
