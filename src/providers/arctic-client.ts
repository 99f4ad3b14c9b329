/**
 * The only module that imports arctic (pinned 3.7.0, unmaintained upstream: docs/design.md).
 * It builds authorization URLs and talks to token endpoints; callers see only our own types
 * ({@link ProviderTokens}, {@link ProviderError}), so arctic can be replaced here alone.
 *
 * arctic's generic `OAuth2Client` is used for every provider rather than its per-provider
 * classes: it does PKCE (S256) for all of them (arctic's `GitHub` class does not), and a
 * provider becomes data (two endpoints) instead of a class.
 *
 * Token requests are NOT sent through arctic: its `fetch` follows redirects (a 307 from a token
 * endpoint would resend the code, verifier and client secret to wherever it points) and takes
 * no AbortSignal (the callback's one deadline). The request is the same form arctic sends
 * (RFC 6749 4.1.3 and 6, client_secret_basic, client_id in the body for public clients).
 */
import { CodeChallengeMethod, OAuth2Client, generateCodeVerifier, generateState } from 'arctic';
import * as v from 'valibot';
import { nowSeconds } from '../util/time';
import { postTokenRequest } from './http';
import { ProviderError, type ProviderTokens } from './types';

export interface ClientSettings {
  clientId: string;
  clientSecret: string | null;
  redirectUri: string;
}

/** 256 random bits (arctic's generator), base64url: the `state` parameter. */
export const newState = (): string => generateState();

/** A PKCE code verifier: 256 random bits, base64url. */
export const newCodeVerifier = (): string => generateCodeVerifier();

const client = (s: ClientSettings) => new OAuth2Client(s.clientId, s.clientSecret, s.redirectUri);

/** The URL to send the browser to, with state, PKCE S256 challenge and scopes. */
export function authorizationUrl(
  settings: ClientSettings,
  endpoint: string,
  params: { state: string; codeVerifier: string; scopes: string[]; extra?: Record<string, string> },
): URL {
  const url = client(settings).createAuthorizationURLWithPKCE(endpoint, params.state, CodeChallengeMethod.S256, params.codeVerifier, params.scopes);
  for (const [k, val] of Object.entries(params.extra ?? {})) url.searchParams.set(k, val);
  return url;
}

// Token endpoint answers are checked here, not through arctic's accessors, so that a missing
// or mistyped field is a clear `bad_response` and GitHub's "error in a 200" is a refusal.
const tokenResponse = v.object({
  access_token: v.pipe(v.string(), v.minLength(1), v.maxLength(8192)),
  token_type: v.optional(v.string()),
  refresh_token: v.optional(v.pipe(v.string(), v.maxLength(8192))),
  id_token: v.optional(v.pipe(v.string(), v.maxLength(16384))),
  expires_in: v.optional(v.union([v.number(), v.pipe(v.string(), v.transform(Number), v.number())])),
  scope: v.optional(v.string()),
});

function toTokens(data: object): ProviderTokens {
  if ('error' in data && typeof data.error === 'string') {
    throw new ProviderError('refused', 'The provider refused the sign-in.', `token endpoint: ${data.error}`, data.error);
  }
  const parsed = v.safeParse(tokenResponse, data);
  if (!parsed.success) throw new ProviderError('bad_response', 'The provider answered with an unusable token response.', parsed.issues[0]?.message);
  const t = parsed.output;
  if (t.token_type !== undefined && t.token_type.toLowerCase() !== 'bearer') {
    throw new ProviderError('bad_response', 'The provider issued an unsupported token type.', t.token_type);
  }
  const expiresIn = t.expires_in;
  return {
    accessToken: t.access_token,
    refreshToken: t.refresh_token ?? null,
    idToken: t.id_token ?? null,
    expiresAt: expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? nowSeconds() + Math.floor(expiresIn) : null,
    scopes: t.scope ? t.scope.split(/[ ,]+/).filter(Boolean) : [],
  };
}

/** `Basic` credentials as arctic encodes them: base64 of the UTF-8 `id:secret`. */
function basicCredentials(s: ClientSettings): string | null {
  if (s.clientSecret === null) return null;
  const bytes = new TextEncoder().encode(`${s.clientId}:${s.clientSecret}`);
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
}

async function tokenRequest(settings: ClientSettings, tokenEndpoint: string, form: URLSearchParams, deadline: AbortSignal): Promise<ProviderTokens> {
  if (settings.clientSecret === null) form.set('client_id', settings.clientId);
  const { status, data } = await postTokenRequest(tokenEndpoint, form, basicCredentials(settings), deadline);
  if (typeof data !== 'object' || data === null) throw new ProviderError('bad_response', 'The provider gave an unexpected answer.', `status ${status}`);
  if (status !== 200) {
    // RFC 6749 5.2: 400 or 401 with an `error` code.
    const code = 'error' in data && typeof data.error === 'string' ? data.error : null;
    if (code === null) throw new ProviderError('bad_response', 'The provider gave an unexpected answer.', `status ${status}`);
    throw new ProviderError('refused', 'The provider refused the sign-in.', `token endpoint: ${code}`, code);
  }
  return toTokens(data);
}

/** Exchanges an authorization code (with its PKCE verifier) at the token endpoint. */
export function exchangeCode(settings: ClientSettings, tokenEndpoint: string, code: string, codeVerifier: string, deadline: AbortSignal): Promise<ProviderTokens> {
  const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: settings.redirectUri, code_verifier: codeVerifier });
  return tokenRequest(settings, tokenEndpoint, form, deadline);
}

/** Renews tokens with a provider refresh token. */
export function refreshTokens(settings: ClientSettings, tokenEndpoint: string, refreshToken: string, deadline: AbortSignal): Promise<ProviderTokens> {
  return tokenRequest(settings, tokenEndpoint, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }), deadline);
}
