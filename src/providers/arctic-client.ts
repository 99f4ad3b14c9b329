/**
 * The only module that imports arctic (pinned 3.7.0, unmaintained upstream: DESIGN.md).
 * It builds authorization URLs and talks to token endpoints; callers see only our own types
 * ({@link ProviderTokens}, {@link ProviderError}), so arctic can be replaced here alone.
 *
 * arctic's generic `OAuth2Client` is used for every provider rather than its per-provider
 * classes: it does PKCE (S256) for all of them (arctic's `GitHub` class does not), and a
 * provider becomes data (two endpoints) instead of a class.
 */
import {
  ArcticFetchError,
  CodeChallengeMethod,
  OAuth2Client,
  OAuth2RequestError,
  UnexpectedErrorResponseBodyError,
  UnexpectedResponseError,
  generateCodeVerifier,
  generateState,
} from 'arctic';
import * as v from 'valibot';
import { withDeadline } from './http';
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
    throw new ProviderError('refused', 'The provider refused the sign-in.', `token endpoint: ${data.error}`);
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
    expiresAt: expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? Math.floor(Date.now() / 1000) + Math.floor(expiresIn) : null,
    scopes: t.scope ? t.scope.split(/[ ,]+/).filter(Boolean) : [],
  };
}

/** Maps arctic's errors onto ours: the provider said no (400), garbage (502), unreachable (503). */
function translate(e: unknown): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof OAuth2RequestError) return new ProviderError('refused', 'The provider refused the sign-in.', `token endpoint: ${e.code}`);
  if (e instanceof ArcticFetchError) return new ProviderError('unavailable', 'The provider could not be reached.', String(e.cause));
  if (e instanceof UnexpectedResponseError) {
    const kind = e.status >= 500 || e.status === 429 ? 'unavailable' : 'bad_response';
    return new ProviderError(kind, kind === 'unavailable' ? 'The provider is unavailable.' : 'The provider gave an unexpected answer.', `status ${e.status}`);
  }
  if (e instanceof UnexpectedErrorResponseBodyError) return new ProviderError('bad_response', 'The provider gave an unexpected answer.', `status ${e.status}`);
  return new ProviderError('bad_response', 'The provider gave an unexpected answer.', e instanceof Error ? e.message : String(e));
}

/** Exchanges an authorization code (with its PKCE verifier) at the token endpoint. */
export async function exchangeCode(settings: ClientSettings, tokenEndpoint: string, code: string, codeVerifier: string): Promise<ProviderTokens> {
  try {
    const tokens = await withDeadline(client(settings).validateAuthorizationCode(tokenEndpoint, code, codeVerifier), 'The provider');
    return toTokens(tokens.data);
  } catch (e) {
    throw translate(e);
  }
}

/** Renews tokens with a provider refresh token. */
export async function refreshTokens(settings: ClientSettings, tokenEndpoint: string, refreshToken: string): Promise<ProviderTokens> {
  try {
    const tokens = await withDeadline(client(settings).refreshAccessToken(tokenEndpoint, refreshToken, []), 'The provider');
    return toTokens(tokens.data);
  } catch (e) {
    throw translate(e);
  }
}
