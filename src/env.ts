/**
 * The Worker's bindings and the per-request variables Gatehouse sets on the Hono context.
 * Every part of the app sees the same contract through {@link AppEnv}.
 */
import type { Config } from './config/schema';
import type { Keyring } from './keys/keyring';

/** Bindings and settings from `wrangler.toml`, `.dev.vars` and `wrangler secret put`. */
export interface Env {
  DB: D1Database;
  REVOKED: KVNamespace;
  RATE_LIMITER?: RateLimit;
  /** Any other setting: validated once per isolate by `loadConfig`. */
  [setting: string]: unknown;
}

/** The signed-in principal, as established by `requireAuth()` / `optionalAuth()`. */
export interface AuthUser {
  id: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  sessionId: string;
  /** Access token id and expiry (Unix seconds), for revocation on logout. */
  tokenId: string;
  tokenExpiresAt: number;
  issuedAt: number;
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
  /** The `ROUTES` path a proxied request matched, for the request log. */
  proxyRoute?: string;
}

export interface AppEnv {
  Bindings: Env;
  Variables: Variables;
}
