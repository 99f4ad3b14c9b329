/**
 * `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core §9): a client proves who it is
 * with a JWT it signed with a key of its registered JWK Set. Asymmetric algorithms only (no
 * `none`, no HS*: a shared-key MAC would make the registered "public" key a secret). `iss` and
 * `sub` are the client id; `aud` is the issuer alone, one string (RFC 7523bis): an endpoint's URL
 * is refused, since a client that also talks to another server can be led to sign assertions for
 * "its" token endpoint naming ours, which that server would replay here (audience injection);
 * `exp` is required and at most five minutes ahead; `jti` is used
 * once, recorded in D1 until the assertion expires (storage/oauth-clients.ts `useAssertionJti`).
 */
import type { Context } from 'hono';
import { decodeJwt } from 'jose/jwt/decode';
import { createLocalJWKSet } from 'jose/jwks/local';
import { jwtVerify } from 'jose/jwt/verify';
import type { JWTPayload } from 'jose';
import type { AppEnv } from '../env';
import { badRequest } from '../http/errors';
import { log } from '../observability/log';
import { useAssertionJti, type OAuthClient } from '../storage/oauth-clients';
import { CLOCK_TOLERANCE_S, nowSeconds } from '../util/time';
import { ASSERTION_ALGORITHMS } from './client-metadata';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** How far ahead an assertion's `exp` may be: it is a one-time proof, not a credential to keep. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
const MAX_ASSERTION_LENGTH = 8 * 1024;
const MAX_JTI_LENGTH = 256;

/**
 * The client a request's `client_assertion` claims to be (its unverified `sub`), for finding
 * the keys that then verify it; `client_id`, when also sent, must agree (RFC 7521 §4.2).
 * `invalid_request` for a wrong `client_assertion_type` or an assertion that is not a JWT.
 */
export function assertionClientId(form: { client_id?: string; client_assertion_type?: string; client_assertion: string }): string {
  if (form.client_assertion_type !== CLIENT_ASSERTION_TYPE) throw badRequest(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}.`);
  let claims: JWTPayload;
  try {
    if (form.client_assertion.length > MAX_ASSERTION_LENGTH) throw new Error('too long');
    claims = decodeJwt(form.client_assertion);
  } catch {
    throw badRequest('client_assertion is not a JWT.');
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') throw badRequest('client_assertion has no sub (the client id).');
  if (form.client_id !== undefined && form.client_id !== claims.sub) throw badRequest('client_id and the client_assertion’s sub differ.');
  return claims.sub;
}

/**
 * True when `assertion` is a valid, unused private_key_jwt assertion of `client`; its `jti` is
 * then used up. False for every failure (the caller answers one `invalid_client`); the reason
 * is logged.
 */
export async function verifyClientAssertion(c: Context<AppEnv>, client: OAuthClient, assertion: string): Promise<boolean> {
  const refuse = (reason: string) => {
    log.warn('client_assertion_refused', { client_id: client.id, reason });
    return false;
  };
  if (client.jwks === null) return refuse('no keys registered');
  if (assertion.length > MAX_ASSERTION_LENGTH) return refuse('too long');
  const config = c.get('config');
  let payload: JWTPayload;
  try {
    const keys = createLocalJWKSet({ keys: client.jwks.keys.filter((k): k is Record<string, unknown> => typeof k === 'object' && k !== null) });
    ({ payload } = await jwtVerify(assertion, keys, {
      issuer: client.id,
      subject: client.id,
      audience: config.PUBLIC_URL,
      algorithms: [...ASSERTION_ALGORITHMS],
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
    }));
  } catch (e) {
    return refuse(e instanceof Error ? e.message : 'unverifiable');
  }
  const now = nowSeconds();
  const { exp, jti } = payload;
  if (typeof payload.aud !== 'string') return refuse('aud is not the issuer alone');
  if (exp === undefined || exp > now + MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_TOLERANCE_S) return refuse('exp too far ahead');
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) return refuse('bad jti');
  // Kept as long as jose would still accept the assertion (its exp plus the clock tolerance).
  if (!(await useAssertionJti(c.env.DB, client.id, jti, exp + CLOCK_TOLERANCE_S, now))) return refuse('jti replayed');
  return true;
}
