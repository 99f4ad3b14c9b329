/**
 * OpenID Connect discovery: `{issuer}/.well-known/openid-configuration`, fetched once per
 * isolate per issuer and kept for an hour. A failed fetch is not cached, so a provider that
 * comes back is picked up on the next sign-in.
 */
import * as v from 'valibot';
import { fetchJson } from './http';
import { ProviderError, type OidcEndpoints } from './types';

const CACHE_MS = 60 * 60 * 1000;

const endpointUrl = v.pipe(v.string(), v.url());

const discoveryDocument = v.object({
  issuer: v.string(),
  authorization_endpoint: endpointUrl,
  token_endpoint: endpointUrl,
  jwks_uri: endpointUrl,
  userinfo_endpoint: v.optional(endpointUrl),
  authorization_response_iss_parameter_supported: v.optional(v.boolean()),
});

const cache = new Map<string, { endpoints: OidcEndpoints; fetchedAt: number }>();

/** Outside development every endpoint must be https: tokens and keys never travel in clear. */
function checkTransport(endpoints: OidcEndpoints, allowHttp: boolean): void {
  for (const url of [endpoints.authorizationEndpoint, endpoints.tokenEndpoint, endpoints.jwksUri, endpoints.userinfoEndpoint]) {
    if (url === undefined) continue;
    const protocol = new URL(url).protocol;
    if (protocol !== 'https:' && !(allowHttp && protocol === 'http:')) {
      throw new ProviderError('bad_response', 'The provider advertises an endpoint that is not https.', url);
    }
  }
}

export async function discover(issuer: string, allowHttp: boolean, deadline: AbortSignal): Promise<OidcEndpoints> {
  const hit = cache.get(issuer);
  if (hit && Date.now() - hit.fetchedAt < CACHE_MS) return hit.endpoints;
  const doc = await fetchJson(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, discoveryDocument, 'The provider’s discovery document', { deadline });
  // OpenID Connect Discovery 1.0, section 4.3: the issuer must be exactly the one we asked.
  if (doc.issuer !== issuer) {
    throw new ProviderError('bad_response', 'The provider’s discovery document names another issuer.', `${doc.issuer} != ${issuer}`);
  }
  const endpoints: OidcEndpoints = {
    issuer,
    authorizationEndpoint: doc.authorization_endpoint,
    tokenEndpoint: doc.token_endpoint,
    jwksUri: doc.jwks_uri,
    userinfoEndpoint: doc.userinfo_endpoint,
    issParameterSupported: doc.authorization_response_iss_parameter_supported,
  };
  checkTransport(endpoints, allowHttp);
  cache.set(issuer, { endpoints, fetchedAt: Date.now() });
  return endpoints;
}
