/**
 * The provider side of a sign-in, for any provider in the catalog: build the authorization
 * URL (state, PKCE S256, and a nonce for OpenID Connect), then turn the callback's code into a
 * verified {@link ProviderProfile}.
 */
import * as v from 'valibot';
import type { Config } from '../config/schema';
import { randomId } from '../util/random';
import { nowSeconds } from '../util/time';
import { authorizationUrl, exchangeCode, newCodeVerifier, newState, refreshTokens, type ClientSettings } from './arctic-client';
import { discover } from './discovery';
import { fetchJson, newDeadline } from './http';
import { groupsClaim } from './groups';
import { verifyIdToken, type IdTokenClaims } from './id-token';
import { ProviderError, type OidcEndpoints, type OidcProvider, type Provider, type ProviderProfile, type ProviderTokens } from './types';

export interface ProviderContext {
  /** `PUBLIC_URL` + auth prefix + `/callback/:id`: never derived from the request. */
  redirectUri: string;
  /** Development only: lets a local issuer use http. */
  allowHttp: boolean;
}

/** The context for a provider on this gateway: the redirect URI comes from `PUBLIC_URL` alone. */
export function providerContext(config: Config, provider: Provider): ProviderContext {
  return { redirectUri: `${config.PUBLIC_URL}${config.AUTH_PREFIX}/callback/${provider.id}`, allowHttp: config.isDevelopment };
}

export interface AuthorizationStart {
  url: string;
  state: string;
  codeVerifier: string;
  /** Null for plain OAuth 2.0 providers. */
  nonce: string | null;
}

const settings = (p: Provider, ctx: ProviderContext): ClientSettings => ({ clientId: p.clientId, clientSecret: p.clientSecret, redirectUri: ctx.redirectUri });

/** The provider's endpoints: written down in the catalog, or from discovery (cached). */
export function endpointsOf(p: OidcProvider, ctx: ProviderContext, deadline: AbortSignal): Promise<OidcEndpoints> {
  return p.endpoints ? Promise.resolve(p.endpoints) : discover(p.issuer, ctx.allowHttp, deadline);
}

export async function startAuthorization(provider: Provider, ctx: ProviderContext): Promise<AuthorizationStart> {
  const state = newState();
  const codeVerifier = newCodeVerifier();
  if (provider.protocol === 'oauth2') {
    const url = authorizationUrl(settings(provider, ctx), provider.authorizationEndpoint, { state, codeVerifier, scopes: provider.scopes, extra: provider.authorizationParams });
    return { url: url.href, state, codeVerifier, nonce: null };
  }
  const endpoints = await endpointsOf(provider, ctx, newDeadline());
  const nonce = randomId(32);
  const url = authorizationUrl(settings(provider, ctx), endpoints.authorizationEndpoint, {
    state,
    codeVerifier,
    scopes: provider.scopes,
    extra: { ...provider.authorizationParams, nonce },
  });
  return { url: url.href, state, codeVerifier, nonce };
}

/** Display text (a name): shortening it is harmless. Never used for emails or subjects. */
const text = (x: unknown, max: number): string | null => (typeof x === 'string' && x.trim() !== '' ? x.trim().slice(0, max) : null);
/**
 * An email claim as sent, only trimmed: never shortened, since a prefix of an address is
 * another address (`…@corp.example.attacker.test` cut to `…@corp.example`). Whether it is a
 * usable address is decided in one place, when the account is resolved (auth/provider-account.ts).
 */
const emailClaim = (x: unknown): string | null => (typeof x === 'string' && x.trim() !== '' ? x.trim() : null);
const httpsUrl = (x: unknown): string | null => (typeof x === 'string' && /^https:\/\/[^\s]{1,2000}$/.test(x) ? x : null);
/**
 * The ID token's `sid`, as sent: compared for equality with a logout token's, never shown.
 * One longer than 255 characters (far beyond the identifiers providers use) is not recorded.
 */
const providerSid = (x: unknown): string | null => (typeof x === 'string' && x !== '' && x.length <= 255 ? x : null);
// Some providers send the boolean as a string; anything else is "not verified".
const isTrue = (x: unknown): boolean => x === true || x === 'true';

const userinfoSchema = v.looseObject({ sub: v.string(), email: v.optional(v.unknown()), email_verified: v.optional(v.unknown()) });

async function oidcProfile(p: OidcProvider, endpoints: OidcEndpoints, claims: IdTokenClaims, accessToken: string, deadline: AbortSignal): Promise<ProviderProfile> {
  let email = emailClaim(claims.email);
  let verified = isTrue(claims.email_verified);
  const claim = p.groupsClaim;
  let groups = claim === undefined ? undefined : groupsClaim(claims, claim, p.groupNamespace);
  const groupsMissing = claim !== undefined && groups === undefined;
  // One userinfo call for whatever the ID token left out (GitLab lists `groups` only there).
  if ((email === null || groupsMissing) && endpoints.userinfoEndpoint) {
    const info = await userinfo(p, endpoints.userinfoEndpoint, claims.sub, accessToken, deadline);
    if (email === null) {
      email = emailClaim(info.email);
      verified = isTrue(info.email_verified);
    }
    if (claim !== undefined && groups === undefined) groups = groupsClaim(info, claim, p.groupNamespace);
  }
  return {
    subject: claims.sub,
    email,
    emailVerified: email !== null && verified,
    name: text(claims.name, 100),
    avatarUrl: httpsUrl(claims.picture),
    // A claim that lists none: no groups. A claim sent nowhere (not asked for, misnamed): nobody
    // vouches (null), which a rule denying a group must not read as "in none".
    groups: claim === undefined ? null : (groups ?? null),
    sessionId: providerSid(claims.sid),
  };
}

async function userinfo(p: OidcProvider, endpoint: string, subject: string, accessToken: string, deadline: AbortSignal) {
  const info = await fetchJson(endpoint, userinfoSchema, `${p.name}`, { bearer: accessToken, deadline });
  // OpenID Connect Core 5.3.2: userinfo about anyone else must not be used.
  if (info.sub !== subject) throw new ProviderError('refused', 'The provider’s user information is about another account.', 'userinfo sub mismatch');
  return info;
}

/**
 * RFC 9207 (mix-up defence): an `iss` on the authorization response must be exactly the
 * provider's issuer, and a provider whose discovery document says it always sends one
 * (`authorization_response_iss_parameter_supported: true`) must have sent it. Plain OAuth 2.0
 * providers have no issuer identifier (GitHub), so there is nothing to compare with.
 */
function checkResponseIssuer(endpoints: OidcEndpoints, iss: string | undefined): void {
  if (iss === undefined) {
    if (endpoints.issParameterSupported === true) {
      throw new ProviderError('refused', 'The sign-in response does not say which provider sent it.', 'iss missing (RFC 9207)', 'issuer_missing');
    }
    return;
  }
  if (iss !== endpoints.issuer) {
    throw new ProviderError('refused', 'The sign-in response names a different provider.', `iss ${iss.slice(0, 200)} != ${endpoints.issuer}`, 'issuer_mismatch');
  }
}

/**
 * Exchanges the code and establishes who signed in, all under ONE deadline (discovery, token,
 * key set, userinfo or API calls together). Throws {@link ProviderError}.
 */
export async function completeAuthorization(
  provider: Provider,
  ctx: ProviderContext,
  input: { code: string; codeVerifier: string; nonce: string | null; iss: string | undefined },
): Promise<{ profile: ProviderProfile; tokens: ProviderTokens }> {
  const deadline = newDeadline();
  if (provider.protocol === 'oauth2') {
    const tokens = await exchangeCode(settings(provider, ctx), provider.tokenEndpoint, input.code, input.codeVerifier, deadline);
    const [profile, groups] = await Promise.all([
      provider.fetchProfile(tokens.accessToken, deadline),
      provider.fetchGroups ? provider.fetchGroups(tokens.accessToken, deadline) : null,
    ]);
    return { profile: { ...profile, groups, sessionId: null }, tokens };
  }
  if (input.nonce === null) throw new ProviderError('refused', 'The sign-in state is incomplete.', 'no nonce for OIDC');
  const endpoints = await endpointsOf(provider, ctx, deadline);
  // Before the code is sent anywhere: a mixed-up response's code must not reach this token endpoint.
  checkResponseIssuer(endpoints, input.iss);
  const tokens = await exchangeCode(settings(provider, ctx), endpoints.tokenEndpoint, input.code, input.codeVerifier, deadline);
  if (!tokens.idToken) throw new ProviderError('bad_response', 'The provider did not return an ID token.');
  const claims = await verifyIdToken(
    tokens.idToken,
    { issuers: [endpoints.issuer, ...(provider.issuerAliases ?? [])], clientId: provider.clientId, jwksUri: endpoints.jwksUri, nonce: input.nonce },
    deadline,
  );
  return { profile: await oidcProfile(provider, endpoints, claims, tokens.accessToken, deadline), tokens };
}

/** Renews a provider access token with its refresh token (discovery and token call under one deadline). */
export async function renewTokens(provider: Provider, ctx: ProviderContext, refreshToken: string): Promise<ProviderTokens> {
  const deadline = newDeadline();
  const tokenEndpoint = provider.protocol === 'oauth2' ? provider.tokenEndpoint : (await endpointsOf(provider, ctx, deadline)).tokenEndpoint;
  return refreshTokens(settings(provider, ctx), tokenEndpoint, refreshToken, deadline);
}

/** The provider grant is over (no usable token is left to ask with): the user must sign in again. */
const grantOver = (detail: string) => new ProviderError('refused', 'The provider can no longer be asked on the user’s behalf.', detail, 'grant_expired');

/** The provider answered without the groups claim: that says nothing of the groups (not "none"). */
const groupsAbsent = (detail: string) => new ProviderError('bad_response', 'The provider did not say which groups the user is in.', detail, 'groups_absent');

/** Seconds before its expiry at which an access token is no longer used to ask the provider. */
const EXPIRY_MARGIN_S = 60;

/**
 * Re-reads a signed-in user's groups with the grant their sign-in left (`tokens`), all under ONE
 * deadline. OpenID Connect: the refresh token buys a new ID token (its groups claim, about the
 * same `subject`) and access token (userinfo, when the ID token lacks the claim); without a
 * refresh token, an unexpired access token asks userinfo. Plain OAuth 2.0 (GitHub): the access
 * token asks the API, renewed first when it has expired and can be. Returns the groups and the
 * tokens to keep from now on, and `asOf`: when the provider stated them, if it says so (the
 * ID token's `iat`: one re-sent or cached is as old as it says, not as new as this call).
 * Throws {@link ProviderError}.
 */
export async function rereadGroups(provider: Provider, ctx: ProviderContext, subject: string, tokens: ProviderTokens): Promise<{ groups: string[]; tokens: ProviderTokens; asOf: number | null }> {
  const deadline = newDeadline();
  const expired = (t: ProviderTokens) => t.expiresAt !== null && t.expiresAt - EXPIRY_MARGIN_S <= nowSeconds();
  const keepRefresh = (renewed: ProviderTokens, old: ProviderTokens): ProviderTokens => ({ ...renewed, idToken: null, refreshToken: renewed.refreshToken ?? old.refreshToken });
  if (provider.protocol === 'oauth2') {
    if (!provider.fetchGroups) throw new ProviderError('refused', 'The provider supplies no groups.', 'no group source', 'no_groups');
    let current = tokens;
    if (expired(current)) {
      if (!current.refreshToken) throw grantOver('access token expired, no refresh token');
      current = keepRefresh(await refreshTokens(settings(provider, ctx), provider.tokenEndpoint, current.refreshToken, deadline), current);
    }
    return { groups: await provider.fetchGroups(current.accessToken, deadline), tokens: current, asOf: null };
  }
  const claim = provider.groupsClaim;
  if (claim === undefined) throw new ProviderError('refused', 'The provider supplies no groups.', 'no group source', 'no_groups');
  const endpoints = await endpointsOf(provider, ctx, deadline);
  let current = tokens;
  if (current.refreshToken) {
    const renewed = await refreshTokens(settings(provider, ctx), endpoints.tokenEndpoint, current.refreshToken, deadline);
    current = keepRefresh(renewed, current);
    if (renewed.idToken) {
      const claims = await verifyIdToken(renewed.idToken, { issuers: [endpoints.issuer, ...(provider.issuerAliases ?? [])], clientId: provider.clientId, jwksUri: endpoints.jwksUri, nonce: null }, deadline);
      if (claims.sub !== subject) throw new ProviderError('refused', 'The provider’s ID token is about another account.', 'refreshed id_token sub mismatch');
      const fromIdToken = groupsClaim(claims, claim, provider.groupNamespace);
      if (fromIdToken !== undefined) return { groups: fromIdToken, tokens: current, asOf: typeof claims.iat === 'number' ? claims.iat : null };
    }
  } else if (expired(current)) {
    throw grantOver('access token expired, no refresh token');
  }
  if (!endpoints.userinfoEndpoint) throw groupsAbsent('no groups claim in the refreshed ID token, no userinfo');
  const info = await userinfo(provider, endpoints.userinfoEndpoint, subject, current.accessToken, deadline);
  const fromUserinfo = groupsClaim(info, claim, provider.groupNamespace);
  if (fromUserinfo === undefined) throw groupsAbsent('no groups claim in the refreshed ID token or userinfo');
  return { groups: fromUserinfo, tokens: current, asOf: null };
}
