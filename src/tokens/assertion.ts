/**
 * `X-Auth-Assertion`: a short-lived JWT that tells an origin who the request is from, signed
 * with the gateway's active key and bound to one audience (docs/design.md, "Identity sent to
 * origins"). Signing costs far more than a map lookup, so each isolate keeps the assertion of
 * a (session, audience) pair and reuses it until it is close to expiry or the session's access
 * token changes (a refresh may carry new roles).
 *
 * A service (README "Machines") gets an assertion of its own: `sub` and `client_id` are the
 * client, `svc` is true, `scope` its token's scopes, and there is no email, role or sign-in of a
 * person, so an origin that reads a person's claims finds none (origin/verify-assertion.ts
 * refuses it unless the origin accepts services). Cached per (token, audience) in the same map.
 */
import { SignJWT } from 'jose/jwt/sign';
import type { AuthUser, ServiceCaller } from '../env';
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
  iat: number;
  exp: number;
}

/** A service's assertion. */
export interface ServiceAssertionClaims {
  iss: string;
  aud: string;
  sub: string;
  client_id: string;
  svc: true;
  scope: string;
  sid: string;
  iat: number;
  exp: number;
}

interface Cached {
  token: string;
  exp: number;
  /** The access token it was made from. */
  jti: string;
}

const cacheFor = memoize((_keyring: Keyring): Map<string, Cached> => new Map());

/** Signs (or reuses) the assertion for this user and audience. */
export async function assertionFor(
  keyring: Keyring,
  issuer: string,
  user: AuthUser,
  audience: string,
  now = nowSeconds(),
): Promise<string> {
  const cache = cacheFor(keyring);
  const key = `${user.sessionId}\n${audience}`;
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

function remember(cache: Map<string, Cached>, key: string, entry: Cached, now: number): void {
  cache.delete(key); // re-insert at the end: Map order is then oldest-first
  cache.set(key, entry);
  if (cache.size > MAX_CACHED) {
    for (const [k, held] of cache) {
      if (cache.size <= MAX_CACHED && held.exp - now > 0) break;
      cache.delete(k);
    }
  }
}

/**
 * Signs (or reuses) the assertion for a service and audience. Keyed by the token: a service's
 * session id is shared by all of its tokens of one epoch, which may be many at once.
 */
export async function serviceAssertionFor(keyring: Keyring, issuer: string, service: ServiceCaller, audience: string, now = nowSeconds()): Promise<string> {
  const cache = cacheFor(keyring);
  const key = `svc\n${service.tokenId}\n${audience}`;
  const hit = cache.get(key);
  if (hit && hit.exp - now > ASSERTION_REUSE_MARGIN_S) return hit.token;

  const exp = Math.min(now + ASSERTION_TTL_S, service.tokenExpiresAt);
  const active = keyring.active;
  const token = await new SignJWT({ client_id: service.clientId, svc: true, scope: service.scope, sid: service.sessionId })
    .setProtectedHeader({ alg: active.alg, kid: active.kid, typ: ASSERTION_TYPE })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(service.clientId)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(active.privateKey);
  remember(cache, key, { token, exp, jti: service.tokenId }, now);
  return token;
}
