/**
 * The Worker's bindings and the per-request variables Gatehouse sets on the Hono context.
 * Every part of the app sees the same contract through {@link AppEnv}.
 */
import type { Config } from './config/schema';
import type { Keyring } from './keys/keyring';
import type { LogoutNoticeQueue, UserSessionsNamespace } from './storage/user-sessions';

/**
 * The bindings from `wrangler.toml` that code reads by name. The settings (`PUBLIC_URL`, ...)
 * are read only by `loadConfig`, which validates the whole env object into a typed `Config`;
 * a route's `service:NAME` origin is read through {@link serviceBinding}.
 */
export interface Env {
  DB: D1Database;
  REVOKED: KVNamespace;
  /** Each user's sessions and revocation fence (storage/user-sessions.ts): one Durable Object per user. */
  USER_SESSIONS: UserSessionsNamespace;
  /** Logout notices to origins (README "Revocation"): the sessions objects produce, auth/logout-notices.ts consumes. Required when a route sets `logout_notify`. */
  LOGOUT_NOTICES?: LogoutNoticeQueue;
  /** Cloudflare Email Service (src/mail/): used when set and SMTP_URL is not. */
  EMAIL?: SendEmail;
  /** The shared per-IP burst limiter (middleware/rate-limit.ts). */
  RATE_LIMITER?: RateLimit;
  /** Optional per-action limiters; an action without one shares `RATE_LIMITER`. */
  RATE_LIMITER_LOGIN?: RateLimit;
  RATE_LIMITER_REGISTER?: RateLimit;
  RATE_LIMITER_REFRESH?: RateLimit;
  RATE_LIMITER_OAUTH?: RateLimit;
  RATE_LIMITER_VERIFY_FAILURE?: RateLimit;
  RATE_LIMITER_ACCOUNT_MAIL?: RateLimit;
  /** Passkey sign-in: option requests and failed assertions. */
  RATE_LIMITER_PASSKEY?: RateLimit;
  /** Dynamic client registration (`/oauth/register`). */
  RATE_LIMITER_REGISTER_CLIENT?: RateLimit;
  RATE_LIMITER_SCIM?: RateLimit;
  /** Workers Analytics Engine (observability/metrics.ts): one data point per request outcome when set. */
  METRICS?: AnalyticsEngineDataset;
}

/**
 * The service binding a route names (`origin = "service:NAME"`), or undefined if the env holds
 * no binding by that name. The name comes from `ROUTES`, so it is looked up at run time and
 * what is found is checked, not assumed.
 */
export function serviceBinding(env: Env, name: string): Pick<Fetcher, 'fetch'> | undefined {
  const binding: unknown = Reflect.get(env, name);
  return isFetcher(binding) ? binding : undefined;
}

/** Anything with a `fetch` method: what a Workers service binding is. */
function isFetcher(x: unknown): x is Pick<Fetcher, 'fetch'> {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && 'fetch' in x && typeof x.fetch === 'function';
}

/** The signed-in principal, as established by `requireAuth()` / `optionalAuth()`. */
export interface AuthUser {
  id: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  /** Groups the identity provider says the user is in (OIDC `groups`, GitHub organisations and teams). */
  groups: readonly string[];
  /**
   * Whether a provider vouches for `groups` (the token's `groups` claim is present). False for
   * sessions without provider groups and groups too old: `groups` is then empty, but the user
   * may well be in some, so a rule denying a group refuses (proxy/policy.ts).
   */
  groupsKnown: boolean;
  /**
   * Whether the directory (SCIM) vouches for the user's `scim:` groups, which are then in
   * `groups` (the token's `scim_groups` claim is present). Absent: false.
   */
  scimGroupsKnown?: boolean;
  sessionId: string;
  /** Access token id and expiry (Unix seconds), for revocation on logout. */
  tokenId: string;
  tokenExpiresAt: number;
  issuedAt: number;
  /** How and when the user authenticated (the token's `amr` and `auth_time`): what step-up checks. */
  amr: readonly string[];
  authTime: number;
  /** The OAuth client acting for the user (a grant token at a protected resource); absent for the user's own session. */
  clientId?: string;
}

/**
 * A service (a client with the client-credentials grant, README "Machines") calling a proxied
 * route or forward-auth: its verified grant token. No user, so none of a person's facts.
 */
export interface ServiceCaller {
  kind: 'service';
  clientId: string;
  /** `svc:<client id>:<token epoch>` (tokens/grant-token.ts `serviceSessionId`). */
  sessionId: string;
  /** Space-separated scopes. */
  scope: string;
  tokenId: string;
  tokenExpiresAt: number;
}

export interface Variables {
  config: Config;
  keyring: Keyring;
  user: AuthUser;
  /** Set when the request was authenticated by the session cookie (not a bearer token). */
  authVia: 'cookie' | 'bearer';
  requestId: string;
  /** The access policy that decided the request (a proxy route's `auth`), for the request log. */
  policy?: string;
  /** The policy rule that decided (`allow[0]`, `deny[1]`, `no allow matched`, `external`), for the request log. */
  policyRule?: string;
  /** Why the external decision refused or failed, for the request log (never the requester). */
  policyReason?: string;
  /** The client a service's request came from (README "Machines"), for the request log. */
  clientId?: string;
  /** The `ROUTES` path a proxied request matched, for the request log. */
  proxyRoute?: string;
  /** The route a lazily loaded app (middleware/lazy-app.ts) matched, for the request log. */
  lazyRoute?: string;
  /**
   * Without SCIM_TOKEN, the `scim` rate limit's answer for the request, taken before D1 was asked
   * whether SCIM is on (app-lazy.ts): the SCIM routes neither count it again nor read D1 when over.
   */
  scimRateLimit?: 'counted' | 'over';
  /** The sign-in outcome the request recorded (auth/events.ts), for metrics: how, and what came of it. */
  signIn?: { method: string; outcome: 'session' | 'second_factor' | 'refused' };
}

export interface AppEnv {
  Bindings: Env;
  Variables: Variables;
}
