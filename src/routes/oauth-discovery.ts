/**
 * The authorization server's metadata (README "Apps (OpenID Connect)"): OpenID Connect
 * Discovery 1.0 at `/.well-known/openid-configuration` and RFC 8414 at
 * `/.well-known/oauth-authorization-server`, one document, on the gateway's own host. Built
 * once per configuration; public and cacheable for a few minutes (the JWKS's own lifetime).
 */
import { Hono } from 'hono';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { ACR_VALUES, PROMPT_VALUES } from '../auth/oauth-authorize';
import { memoize } from '../util/memo';
import { dynamicRegistrationOpen } from './client-registration';
import { metadataDocumentsEnabled } from '../auth/client-id-metadata';

export const DISCOVERY_PATHS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'] as const;

/** The document for `config`. */
export const discoveryDocument = memoize((config: Config): Record<string, unknown> => {
  const base = `${config.PUBLIC_URL}${config.AUTH_PREFIX}`;
  const registration = dynamicRegistrationOpen(config);
  return {
    issuer: config.PUBLIC_URL,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    userinfo_endpoint: `${base}/userinfo`,
    jwks_uri: `${config.PUBLIC_URL}/.well-known/jwks.json`,
    revocation_endpoint: `${base}/revoke`,
    introspection_endpoint: `${base}/introspect`,
    end_session_endpoint: `${base}/end-session`,
    ...(registration ? { registration_endpoint: `${base}/oauth/register` } : {}),
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    id_token_signing_alg_values_supported: ['ES256'],
    subject_types_supported: ['public'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'amr', 'sid', 'at_hash', 'email', 'email_verified'],
    prompt_values_supported: [...PROMPT_VALUES],
    acr_values_supported: [...ACR_VALUES],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    authorization_response_iss_parameter_supported: true,
    ...(metadataDocumentsEnabled(config) ? { client_id_metadata_document_supported: true } : {}),
  };
});

export const discoveryRoutes = new Hono<AppEnv>();
for (const path of DISCOVERY_PATHS) {
  discoveryRoutes.get(path, (c) => {
    c.header('cache-control', 'public, max-age=300');
    // Browser-based clients (MCP inspectors, single-page apps) read it from their own origin.
    c.header('access-control-allow-origin', '*');
    return c.json(discoveryDocument(c.get('config')));
  });
}
