/**
 * ID token verification with jose against the provider's published keys: signature by a key
 * from `jwks_uri` (asymmetric algorithms only), `iss`, `aud` = our client id, `azp` when
 * several audiences, `exp`/`iat` (jose), and the nonce we sent. Anything else is refused.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { PROVIDER_TIMEOUT_MS, USER_AGENT } from './http';
import { ProviderError } from './types';

/** Never `none`, never HMAC (a client secret is not a signing key we accept). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];

/** One key set per `jwks_uri` per isolate: jose caches the keys and rate-limits refetches. */
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySetFor(jwksUri: string) {
  let set = keySets.get(jwksUri);
  if (!set) {
    set = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: PROVIDER_TIMEOUT_MS,
      // An unknown `kid` triggers at most one refetch per 30 s: forged kids cannot hammer the provider.
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      headers: { 'user-agent': USER_AGENT },
    });
    keySets.set(jwksUri, set);
  }
  return set;
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
  expected: { issuers: string[]; clientId: string; jwksUri: string; nonce: string },
): Promise<IdTokenClaims> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, keySetFor(expected.jwksUri), {
      issuer: expected.issuers,
      audience: expected.clientId,
      algorithms: ID_TOKEN_ALGORITHMS,
      requiredClaims: ['sub', 'exp', 'iat'],
      clockTolerance: 60,
    }));
  } catch (e) {
    if (e instanceof errors.JWKSTimeout) throw new ProviderError('unavailable', 'The provider’s signing keys could not be fetched in time.', 'jwks timeout');
    if (e instanceof errors.JWKSInvalid) throw new ProviderError('bad_response', 'The provider published an unusable key set.', e.message);
    // jose reports a key set it could not fetch (non-200, or not JSON) with its generic error class.
    if (e instanceof errors.JOSEError && e.code === 'ERR_JOSE_GENERIC') {
      const down = e.message.includes('200 OK');
      throw new ProviderError(down ? 'unavailable' : 'bad_response', 'The provider’s signing keys could not be fetched.', e.message);
    }
    if (e instanceof errors.JOSEError) throw new ProviderError('refused', 'The provider’s ID token did not verify.', `${e.code}: ${e.message}`);
    // Network failure or a non-JSON body while fetching the key set.
    throw new ProviderError('unavailable', 'The provider’s signing keys could not be fetched.', e instanceof Error ? e.message : String(e));
  }
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== expected.clientId) {
    throw new ProviderError('refused', 'The provider’s ID token did not verify.', 'azp does not name us');
  }
  if (typeof payload.nonce !== 'string' || payload.nonce !== expected.nonce) {
    throw new ProviderError('refused', 'The provider’s ID token did not verify.', 'nonce mismatch');
  }
  if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 255) {
    throw new ProviderError('refused', 'The provider’s ID token did not verify.', 'bad sub');
  }
  return payload as IdTokenClaims;
}
