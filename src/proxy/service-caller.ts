/**
 * Services at the proxy and forward-auth (README "Machines"): who a service caller is, from a
 * grant token of its own (client credentials) or, at the built-in proxy only, from the client
 * id and secret in two headers (as Cloudflare Access's service tokens), exchanged at the edge
 * for such a token. Loaded by the gate on first use (a dynamic `import()`), so requests of
 * people never evaluate it.
 *
 * A service's token is for one route: its `aud` must be the route's resource identifier
 * (config/protected-resources.ts `resourceUrl`: `https://<host><path>`), never the route's
 * `audience` setting, which is the assertion's, for the origin. Revocation is checked as for
 * every grant token (auth/grant-authenticate.ts), immediately on a `revocation = "immediate"`
 * route.
 *
 * The header exchange keeps each token in a bounded per-isolate map, keyed by the SHA-256 of the
 * client id, the secret and the audience (never the secret itself), until shortly before the
 * token expires and no later than the end of a rotated secret's overlap; every
 * REVOCATION_CACHE_SECONDS the pair is authenticated again before its token is used (so a secret
 * rotated out after the exchange stops opening the proxy within the revocation bound). A cached token is still
 * verified and checked for revocation on every request, so disabling the client refuses it
 * within the revocation bounds.
 */
import type { Context } from 'hono';
import { decodeJwt } from 'jose/jwt/decode';
import { serviceScopes } from '../auth/client-credentials';
import { isMetadataDocumentUrl } from '../auth/client-id-metadata';
import { authenticateGrantToken } from '../auth/grant-authenticate';
import { authenticateClient, type OAuthClient } from '../auth/oauth-clients';
import { issueServiceToken } from '../auth/sign-in';
import { admitsServices } from '../config/policy';
import { resourceUrl } from '../config/protected-resources';
import { routePolicies } from '../config/route-policies';
import type { AppEnv, ServiceCaller, Variables } from '../env';
import { ApiError, invalidToken } from '../http/errors';
import { checkRateLimit } from '../middleware/rate-limit';
import { sha256 } from '../util/random';
import { memoize } from '../util/memo';
import { nowSeconds } from '../util/time';
import { serviceAssertionFor } from '../tokens/service-assertion';
import type { CompiledRoute } from './route-table';

/** The service-token headers (README "Machines"); never forwarded (proxy/forward-headers.ts). */
export const CLIENT_ID_HEADER = 'x-gatehouse-client-id';
export const CLIENT_SECRET_HEADER = 'x-gatehouse-client-secret';

/** Bound on cached exchanged tokens per isolate; the oldest go first. */
export const MAX_CACHED_SERVICE_TOKENS = 1000;
/** A cached token is given up this long before it expires (at most half its lifetime). */
export const SERVICE_TOKEN_REUSE_MARGIN_S = 60;

const NOT_ADMITTED = 'This route does not admit services.';

/** The audience a service's token must carry on `route`: the route's resource identifier. */
export function serviceAudience(c: Context<AppEnv>, route: CompiledRoute): string {
  return resourceUrl(route.config, c.get('config').PUBLIC_URL);
}

/** True if `token` says it is a service's (unverified: it only chooses how to verify it). */
export function claimsService(token: string): boolean {
  try {
    return decodeJwt(token).svc === true;
  } catch {
    return false;
  }
}

/**
 * The route's admission of services: refused (403) unless the route has a policy with an allow
 * rule that names services, and asks nothing of the caller that only a person can give (`require`,
 * `max_auth_age`: a service cannot step up).
 */
async function requireAdmitted(c: Context<AppEnv>, route: CompiledRoute): Promise<void> {
  const policy = (await routePolicies(c.get('config')))?.get(route.config);
  if (!policy || !admitsServices(policy) || (route.config.require ?? []).length > 0 || route.config.max_auth_age !== undefined) {
    c.set('policyRule', 'no service rule');
    throw new ApiError('forbidden', NOT_ADMITTED);
  }
}

/** The verified, unrevoked service behind a grant token presented on `route`. */
async function verifiedService(c: Context<AppEnv>, route: CompiledRoute, token: string): Promise<ServiceCaller> {
  const claims = await authenticateGrantToken(c, token, [serviceAudience(c, route)], route.config.revocation === 'immediate');
  // A user's grant token for this resource is not a service's.
  if (claims.svc !== true) throw invalidToken('The access token is not a service token.');
  // The request log names the client from here on, a refusal by the route included.
  c.set('clientId', claims.client_id);
  return { kind: 'service', clientId: claims.client_id, sessionId: claims.sid, scope: claims.scope, tokenId: claims.jti, tokenExpiresAt: claims.exp };
}

/** A service presenting its own token as a bearer token: verified, then admitted by the route. */
export async function serviceFromToken(c: Context<AppEnv>, route: CompiledRoute, token: string): Promise<ServiceCaller> {
  const service = await verifiedService(c, route, token);
  await requireAdmitted(c, route);
  return service;
}

interface CachedToken {
  token: string;
  /** The client's token epoch it was minted under: a new epoch (a disable, then enable) needs a new token. */
  epoch: string;
  /** Unix seconds after which the entry is not used. */
  until: number;
  /** Unix seconds after which the pair is authenticated again before the token is used. */
  checkAfter: number;
}

type Keyring = Variables['keyring'];

const cacheFor = memoize((_keyring: Keyring): Map<string, CachedToken> => new Map());

function remember(cache: Map<string, CachedToken>, key: string, entry: CachedToken, now: number): void {
  cache.delete(key);
  cache.set(key, entry);
  if (cache.size <= MAX_CACHED_SERVICE_TOKENS) return;
  for (const [k, held] of cache) {
    if (cache.size <= MAX_CACHED_SERVICE_TOKENS && held.until > now) break;
    cache.delete(k);
  }
}

/** How many exchanged tokens this isolate holds for `keyring` (for tests of the bound). */
export function cachedServiceTokens(keyring: Keyring): number {
  return cacheFor(keyring).size;
}

const badPair = () =>
  new ApiError('invalid_client', 'X-Gatehouse-Client-Id and X-Gatehouse-Client-Secret do not authenticate a client: unknown or disabled client, or wrong secret.');

/** The client the pair authenticates, registered for service tokens and allowed `audience`; else a refusal. */
async function pairClient(c: Context<AppEnv>, clientId: string, secret: string, audience: string): Promise<OAuthClient> {
  // A client ID metadata document's client is never a service: no reason to fetch a URL a
  // stranger names on an unauthenticated request.
  if (isMetadataDocumentUrl(clientId)) throw badPair();
  let client;
  try {
    client = await authenticateClient(c, { clientId, secret, method: 'client_secret_post' });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_client') throw badPair();
    throw e;
  }
  if (!client.grantTypes.includes('client_credentials')) throw new ApiError('forbidden', 'This client may not use service tokens (it is not registered for the client_credentials grant).');
  if (!client.allowedAudiences.includes(audience)) throw new ApiError('forbidden', 'This client may not call this route (the route is not among its allowed audiences).');
  return client;
}

/**
 * A token for the pair and audience: the cached one, or one the pipeline mints now. A cached
 * token is used without asking D1 for REVOCATION_CACHE_SECONDS (the bound within which this
 * isolate sees a disable too); then the pair is authenticated again, so a secret rotated out
 * after the exchange (at once, or with an overlap shorter than the token's life) or an audience
 * taken away stops opening the proxy within that bound. A pair that still holds keeps its token.
 */
async function exchange(c: Context<AppEnv>, clientId: string, secret: string, audience: string): Promise<string> {
  const cache = cacheFor(c.get('keyring'));
  const key = await sha256(`${clientId}\n${secret}\n${audience}`);
  const now = nowSeconds();
  const hit = cache.get(key);
  if (hit && hit.until > now && hit.checkAfter > now) return hit.token;
  // Put back below only if the pair still authenticates.
  if (hit) cache.delete(key);
  const client = await pairClient(c, clientId, secret, audience);
  // A rotated secret counts until its overlap ends: so does a token cached for either secret.
  const overlapEnd = client.previousSecretHash !== null && client.previousSecretExpiresAt !== null ? client.previousSecretExpiresAt : Infinity;
  const checkAfter = now + c.get('config').REVOCATION_CACHE_SECONDS;
  if (hit && hit.until > now && hit.epoch === client.tokenEpoch) {
    remember(cache, key, { ...hit, until: Math.min(hit.until, overlapEnd), checkAfter }, now);
    return hit.token;
  }
  const issued = await issueServiceToken(c, client, { audience, scope: serviceScopes(client).join(' ') });
  const margin = Math.min(SERVICE_TOKEN_REUSE_MARGIN_S, Math.floor(issued.expiresIn / 2));
  remember(cache, key, { token: issued.token, epoch: client.tokenEpoch, until: Math.min(issued.expiresAt - margin, overlapEnd), checkAfter }, now);
  return issued.token;
}

/**
 * A service presenting its client id and secret in the two headers, at the built-in proxy: the
 * pair exchanged for a token (or its cached one), verified like any service token, then admitted
 * by the route. A refusal counts against the client's `verify_failure` limit, as forward-auth's.
 */
export async function serviceFromHeaders(c: Context<AppEnv>, route: CompiledRoute, clientId: string): Promise<ServiceCaller> {
  try {
    const secret = c.req.header(CLIENT_SECRET_HEADER);
    if (secret === undefined || secret === '' || clientId === '') throw badPair();
    const token = await exchange(c, clientId, secret, serviceAudience(c, route));
    const service = await verifiedService(c, route, token);
    await requireAdmitted(c, route);
    return service;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) await checkRateLimit(c, 'verify_failure');
    throw e;
  }
}

/**
 * Forward-auth cannot take the two headers: the proxy in front forwards the client's request,
 * headers and all, to the origin, so the secret would reach it.
 */
export function headersRefusedHere(): ApiError {
  return new ApiError(
    'forbidden',
    'X-Gatehouse-Client-Id and X-Gatehouse-Client-Secret are accepted by the built-in proxy only (a proxy in front would pass them on to the origin): exchange them for a token with the client credentials grant and send it as a bearer token.',
  );
}

/**
 * The identity headers for a service, as the origin (proxy) or the proxy in front (forward-auth)
 * gets them: its client id and its assertion for `audience`, nothing of a person.
 */
export async function serviceIdentityHeaders(c: Context<AppEnv>, service: ServiceCaller, audience: string): Promise<Record<string, string>> {
  const assertion = await serviceAssertionFor(c.get('keyring'), c.get('config').PUBLIC_URL, service, audience);
  return { 'x-auth-client-id': service.clientId, 'x-auth-assertion': assertion };
}
