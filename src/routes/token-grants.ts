/**
 * The grants the token endpoint serves (RFC 6749 §4, §6), one handler per `grant_type`: a new
 * grant is one entry here. A grant type without an entry is `unsupported_grant_type`; one the
 * client is not registered for is `unauthorized_client` (routes/oauth-token.ts checks both
 * before a handler runs). The handlers read their parameters; the minting is the sign-in
 * pipeline's (auth/sign-in.ts), for the client-credentials grant through auth/client-credentials.ts.
 */
import type { Context } from 'hono';
import { clientCredentialsGrant } from '../auth/client-credentials';
import { exchangeAuthorizationCode, refreshGrant, type GrantTokens } from '../auth/sign-in';
import type { AppEnv } from '../env';
import { ApiError, badRequest } from '../http/errors';
import type { ClientGrantType, OAuthClient } from '../storage/oauth-clients';
import { required } from './oauth-request';

export type { GrantTokens };

/** A grant's answer to the token request: the token response (RFC 6749 §5.1), or it throws the §5.2 error. */
export type GrantHandler = (c: Context<AppEnv>, client: OAuthClient, form: Map<string, string>) => Promise<Response>;

/** A user's grant's tokens as RFC 6749 §5.1 and OpenID Connect Core §3.1.3.3 spell them. */
function tokenResponse(c: Context<AppEnv>, tokens: GrantTokens): Response {
  return c.json({
    access_token: tokens.accessToken,
    token_type: 'Bearer',
    expires_in: tokens.expiresIn,
    scope: tokens.scope,
    ...(tokens.refreshToken === undefined ? {} : { refresh_token: tokens.refreshToken }),
    ...(tokens.idToken === undefined ? {} : { id_token: tokens.idToken }),
  });
}

/** RFC 7636 §4.1: 43 to 128 characters of the unreserved set. */
const CODE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/** RFC 6749 §3.3: scope tokens separated by single spaces. */
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/;

/** The handler of each grant type the gateway serves. */
export const TOKEN_GRANTS: Partial<Record<ClientGrantType, GrantHandler>> = {
  authorization_code: async (c, client, form) => {
    const codeVerifier = required(form, 'code_verifier');
    if (!CODE_VERIFIER.test(codeVerifier)) throw badRequest('The code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636).');
    const resource = form.get('resource');
    const tokens = await exchangeAuthorizationCode(c, client, {
      code: required(form, 'code'),
      redirectUri: required(form, 'redirect_uri'),
      codeVerifier,
      ...(resource === undefined ? {} : { resource }),
    });
    return tokenResponse(c, tokens);
  },
  refresh_token: async (c, client, form) => {
    const scope = form.get('scope');
    if (scope !== undefined && !SCOPE.test(scope)) throw new ApiError('invalid_scope', 'The scope is malformed.');
    const resource = form.get('resource');
    return tokenResponse(c, await refreshGrant(c, client, {
      refreshToken: required(form, 'refresh_token'),
      ...(scope === undefined ? {} : { scope }),
      ...(resource === undefined ? {} : { resource }),
    }));
  },
  client_credentials: (c, client, form) => clientCredentialsGrant(c, client, new URLSearchParams([...form])),
};

/** The handler for `grantType`, or `unsupported_grant_type`. */
export function grantHandler(grantType: string): { type: ClientGrantType; handle: GrantHandler } {
  const handle = Object.hasOwn(TOKEN_GRANTS, grantType) ? TOKEN_GRANTS[grantType as ClientGrantType] : undefined;
  if (!handle) throw new ApiError('unsupported_grant_type', `The grant type "${grantType}" is not supported.`);
  return { type: grantType as ClientGrantType, handle };
}
