/**
 * `X-Auth-Assertion`: a short-lived JWT that tells an origin who the request is from, signed
 * with the gateway's active key and bound to one audience (docs/design.md, "Identity sent to
 * origins"). Signing costs far more than a map lookup, so each isolate keeps the assertion of
 * a (session, audience) pair and reuses it until it is close to expiry or the session's access
 * token changes (a refresh may carry new roles).
 * A service's assertion is tokens/service-assertion.ts's, kept in the same map.
 */
import { SignJWT } from 'jose/jwt/sign';
import type { AuthUser } from '../env';
import type { Keyring } from '../keys/keyring';
import { nowSeconds } from '../util/time';
import { memoize } from '../util/memo';

export const ASSERTION_TYPE = 'JWT';
/** Longest lifetime of an assertion (docs/design.md: at most 60 s). */
export const ASSERTION_TTL_S = 60;
/** A cached assertion is replaced once it has less than this left, so origins never get a nearly-dead one. */
export const ASSERTION_REUSE_MARGIN_S = 20;
/** Bound on cached entries per isolate; the oldest go first. */
const MAX_CACHED = 10_000;

export interface AssertionClaims {
  iss: string;
  aud: string;
  sub: string;
  email: string;
  email_verified: boolean;
  roles: string[];
  groups: string[];
  sid: string;
  amr: string[];
  auth_time: number;
  /** The OAuth client acting for the user, at a protected resource. */
  client_id?: string;
  iat: number;
  exp: number;
}

export interface Cached {
  token: string;
  exp: number;
  /** The access token it was made from. */
  jti: string;
}

/** The isolate's assertions for a keyring: a person's and a service's (tokens/service-assertion.ts). */
export const cacheFor = memoize((_keyring: Keyring): Map<string, Cached> => new Map());

/** Signs (or reuses) the assertion for this user and audience. */
export async function assertionFor(
  keyring: Keyring,
  issuer: string,
  user: AuthUser,
  audience: string,
  now = nowSeconds(),
): Promise<string> {
  const cache = cacheFor(keyring);
  const key = `${user.sessionId}\n${audience}${user.clientId === undefined ? '' : `\n${user.clientId}`}`;
  const hit = cache.get(key);
  if (hit && hit.jti === user.tokenId && hit.exp - now > ASSERTION_REUSE_MARGIN_S) return hit.token;

  // Never outlive the access token it vouches for.
  const exp = Math.min(now + ASSERTION_TTL_S, user.tokenExpiresAt);
  const active = keyring.active;
  const token = await new SignJWT({
    email: user.email,
    email_verified: user.emailVerified,
    roles: user.roles,
    groups: [...user.groups],
    sid: user.sessionId,
    amr: [...user.amr],
    auth_time: user.authTime,
    ...(user.clientId === undefined ? {} : { client_id: user.clientId }),
  })
    .setProtectedHeader({ alg: active.alg, kid: active.kid, typ: ASSERTION_TYPE })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(user.id)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(active.privateKey);

  remember(cache, key, { token, exp, jti: user.tokenId }, now);
  return token;
}

/** Keeps an assertion, the oldest going first past the bound (expired ones on the way). */
export function remember(cache: Map<string, Cached>, key: string, entry: Cached, now: number): void {
  cache.delete(key); // re-insert at the end: Map order is then oldest-first
  cache.set(key, entry);
  if (cache.size > MAX_CACHED) {
    for (const [k, held] of cache) {
      if (cache.size <= MAX_CACHED && held.exp - now > 0) break;
      cache.delete(k);
    }
  }
}
