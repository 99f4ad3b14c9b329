/**
 * A service's `X-Auth-Assertion` (README "Machines"): `sub` and `client_id` are the client,
 * `svc` is true, `scope` its token's scopes, and there is no email, role or sign-in of a person,
 * so an origin that reads a person's claims finds none (`@gatehouse/verify` refuses it
 * unless the origin accepts services). Kept per (token, audience) in the isolate's map of
 * assertions (tokens/assertion.ts), with the same lifetime and reuse margin. Its own module, so
 * that start-up, which evaluates the person's, does not evaluate this one.
 */
import { SignJWT } from 'jose/jwt/sign';
import type { ServiceCaller } from '../env';
import type { Keyring } from '../keys/keyring';
import { nowSeconds } from '../util/time';
import { ASSERTION_REUSE_MARGIN_S, ASSERTION_TTL_S, ASSERTION_TYPE, cacheFor, remember } from './assertion';

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
