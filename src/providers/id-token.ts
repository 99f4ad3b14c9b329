/**
 * ID token verification with jose against the provider's published keys: signature by a key
 * from `jwks_uri` (asymmetric algorithms only), `iss`, `aud` = our client id, `azp` = our
 * client id whenever present (and required with several audiences), `exp`, `iat` no more than
 * {@link ID_TOKEN_MAX_AGE_SECONDS} old nor in the future (60 s tolerance each way), and the
 * nonce we sent. Anything else is refused.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { PROVIDER_DEADLINE_MS, USER_AGENT, withDeadline } from './http';
import { ProviderError } from './types';

/** Never `none`, never HMAC (a client secret is not a signing key we accept). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];

/**
 * An ID token is minted at the code exchange, moments before we verify it; only clock skew
 * separates its `iat` from now. Ten minutes is the life of the whole flow (the flow cookie):
 * nothing issued for this sign-in can be older, so an older token is one kept from elsewhere.
 */
export const ID_TOKEN_MAX_AGE_SECONDS = 600;

/** One key set per `jwks_uri` per isolate: jose caches the keys and rate-limits refetches. */
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/** The key set of a `jwks_uri`, shared by every token verified against it (ID tokens, logout tokens). */
export function keySetFor(jwksUri: string) {
  let set = keySets.get(jwksUri);
  if (!set) {
    set = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: PROVIDER_DEADLINE_MS,
      // An unknown `kid` triggers at most one refetch per 30 s: forged kids cannot hammer the provider.
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      headers: { 'user-agent': USER_AGENT },
    });
    keySets.set(jwksUri, set);
  }
  return set;
}

/**
 * What a failed jose verification of a provider's token means: the keys could not be had
 * (`unavailable`, `bad_response`), or the token did not verify (`refused`, with `refused` as
 * the message).
 */
export function verificationFailure(e: unknown, refused: string): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof errors.JWKSTimeout) return new ProviderError('unavailable', 'The provider’s signing keys could not be fetched in time.', 'jwks timeout');
  if (e instanceof errors.JWKSInvalid) return new ProviderError('bad_response', 'The provider published an unusable key set.', e.message);
  // jose reports a key set it could not fetch (non-200, or not JSON) with its generic error class.
  if (e instanceof errors.JOSEError && e.code === 'ERR_JOSE_GENERIC') {
    const down = e.message.includes('200 OK');
    return new ProviderError(down ? 'unavailable' : 'bad_response', 'The provider’s signing keys could not be fetched.', e.message);
  }
  if (e instanceof errors.JOSEError) return new ProviderError('refused', refused, `${e.code}: ${e.message}`);
  // Network failure or a non-JSON body while fetching the key set.
  return new ProviderError('unavailable', 'The provider’s signing keys could not be fetched.', e instanceof Error ? e.message : String(e));
}

export interface IdTokenClaims extends JWTPayload {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  name?: unknown;
  picture?: unknown;
}

export async function verifyIdToken(
  idToken: string,
  /** `nonce` null: an ID token from a refresh grant, which answers no authorization request of ours. */
  expected: { issuers: string[]; clientId: string; jwksUri: string; nonce: string | null },
  deadline: AbortSignal,
): Promise<IdTokenClaims> {
  let payload: JWTPayload;
  try {
    const verification = jwtVerify(idToken, keySetFor(expected.jwksUri), {
      issuer: expected.issuers,
      audience: expected.clientId,
      algorithms: ID_TOKEN_ALGORITHMS,
      requiredClaims: ['sub', 'exp', 'iat'],
      // jose refuses an `iat` older than this, and (with maxTokenAge set) one in the future.
      maxTokenAge: ID_TOKEN_MAX_AGE_SECONDS,
      clockTolerance: 60,
    });
    // jose's key set fetch takes no signal of ours: the wait for it is bounded by the deadline.
    ({ payload } = await withDeadline(verification, 'The provider’s signing keys', deadline));
  } catch (e) {
    throw verificationFailure(e, 'The provider’s ID token did not verify.');
  }
  // OpenID Connect Core 3.1.3.7: with several audiences `azp` must be present; whenever it is
  // present it must name us (a token obtained by another client is not ours to accept).
  if ((payload.azp !== undefined || (Array.isArray(payload.aud) && payload.aud.length > 1)) && payload.azp !== expected.clientId) {
    throw new ProviderError('refused', 'The provider’s ID token did not verify.', 'azp does not name us');
  }
  if (expected.nonce !== null && (typeof payload.nonce !== 'string' || payload.nonce !== expected.nonce)) {
    throw new ProviderError('refused', 'The provider’s ID token did not verify.', 'nonce mismatch');
  }
  if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 255) {
    throw new ProviderError('refused', 'The provider’s ID token did not verify.', 'bad sub');
  }
  return { ...payload, sub: payload.sub };
}
