/**
 * The provider contract the rest of Gatehouse sees. Everything here is ours: arctic's types
 * stay inside `arctic-client.ts`, so replacing the library touches one file.
 */
import type { GroupNamespace } from './groups';

/** Endpoints of an OpenID Connect provider, from discovery or written down for well-known ones. */
export interface OidcEndpoints {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  jwksUri: string;
  userinfoEndpoint?: string;
  /**
   * RFC 9207: the provider says it always sends `iss` with the authorization response, so a
   * callback without one is refused. Undefined when discovery did not say (or was not used).
   */
  issParameterSupported?: boolean;
}

interface ProviderBase {
  /** Lower-case id used in paths: `/auth/login/:id`, `/auth/callback/:id`. */
  id: string;
  /** Shown on the sign-in button: "Continue with {name}". */
  name: string;
  clientId: string;
  /** Null for public clients (the dev provider needs none, but sends one anyway). */
  clientSecret: string | null;
  scopes: string[];
  /** Extra authorization request parameters (e.g. Google's `access_type=offline`). */
  authorizationParams?: Record<string, string>;
}

/** OpenID Connect: identity from a verified ID token (and userinfo when it lacks the email). */
export interface OidcProvider extends ProviderBase {
  protocol: 'oidc';
  issuer: string;
  /** Known endpoints; when absent they come from `{issuer}/.well-known/openid-configuration`. */
  endpoints?: OidcEndpoints;
  /** Other `iss` values the provider documents for its ID tokens (Google: `accounts.google.com`). */
  issuerAliases?: string[];
  /**
   * The claim listing the user's groups, read from the ID token, else from userinfo; absent for
   * a provider that has none (Google).
   */
  groupsClaim?: string;
  /** Set for a provider where anyone can name a group (GitLab): its names are qualified (providers/groups.ts). */
  groupNamespace?: GroupNamespace;
}

/** Plain OAuth 2.0: identity from provider-specific API calls. */
export interface OAuth2Provider extends ProviderBase {
  protocol: 'oauth2';
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** Fetches the profile with the access token, giving up when `deadline` aborts. */
  fetchProfile: (accessToken: string, deadline: AbortSignal) => Promise<Omit<ProviderProfile, 'groups' | 'sessionId'>>;
  /** Fetches the user's groups with the access token; absent when the provider supplies none here. */
  fetchGroups?: (accessToken: string, deadline: AbortSignal) => Promise<string[]>;
}

export type Provider = OidcProvider | OAuth2Provider;

/** Who the provider says the user is. `email` is null when the provider shared none. */
export interface ProviderProfile {
  /** The provider's stable id for the account (never the email, which can change hands). */
  subject: string;
  email: string | null;
  /** True only when the provider itself asserts the address is verified. */
  emailVerified: boolean;
  name: string | null;
  avatarUrl: string | null;
  /** The user's groups (bounded: providers/groups.ts), or null when the provider supplies none. */
  groups: string[] | null;
  /**
   * The provider's session this sign-in belongs to (the ID token's `sid`, OpenID Connect
   * Back-Channel Logout 1.0 §2.1), or null: a provider that names none (all plain OAuth 2.0 ones).
   */
  sessionId: string | null;
}

/** The provider's tokens, as parsed and checked by us. */
export interface ProviderTokens {
  accessToken: string;
  refreshToken: string | null;
  idToken: string | null;
  /** Unix seconds, or null when the provider did not say. */
  expiresAt: number | null;
  scopes: string[];
}

/**
 * A provider fault or refusal. `kind` decides the answer: `refused` (the user or provider said
 * no, or the answer failed verification) is 400, `bad_response` (garbage) 502, `unavailable`
 * (down or too slow) 503.
 */
export class ProviderError extends Error {
  constructor(
    readonly kind: 'refused' | 'bad_response' | 'unavailable',
    message: string,
    /** Safe to log; never shown to the user. */
    readonly detail?: string,
    /**
     * A short code for logs and decisions: the provider's OAuth error (`invalid_grant`, ...) or
     * ours (`issuer_mismatch`, `token_redirect`, `deadline`, ...).
     */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}
