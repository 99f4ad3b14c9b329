/**
 * Logout tokens a sign-in provider sends us (OpenID Connect Back-Channel Logout 1.0 §2.6):
 * verified with jose against the provider's published keys, as its ID tokens are
 * (providers/id-token.ts: the same key set, cache and bounds), then the claims that make it a
 * logout token and nothing else:
 * - signature by a key from `jwks_uri`, asymmetric algorithms only; `iss` the provider's;
 *   `aud` our client id there (`azp` too whenever present, as for ID tokens);
 * - `iat` present and within {@link LOGOUT_TOKEN_MAX_AGE_S} of now either way (60 s tolerance);
 *   `exp`, when present, not past (the specification made it required late: older providers
 *   send none); `jti` present (single use is the caller's, in D1);
 * - `events` an object whose `http://schemas.openid.net/event/backchannel-logout` member is an
 *   object; no `nonce` (so no ID token passes as a logout token); `sub`, `sid` or both;
 * - the `typ` header, when present: `logout+jwt` (or its media type form). The specification
 *   makes explicit typing a SHOULD, so an untyped token is accepted, and `JWT` counts as
 *   untyped (it says only "a JWT"; Keycloak types its logout tokens so). Any other type
 *   (`at+jwt`, `secevent+jwt`...) names another kind of token: refused.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { withDeadline } from '../providers/http';
import { ID_TOKEN_ALGORITHMS, keySetFor, verificationFailure } from '../providers/id-token';
import { ProviderError } from '../providers/types';
import { BACKCHANNEL_LOGOUT_EVENT } from './logout-token';

/**
 * A provider sends a logout token the moment its session ends: only delivery and clock skew
 * separate its `iat` from now. Two minutes covers a provider's retries; an older one is kept
 * from elsewhere. The `jti`s accepted are kept as long as a token can be accepted.
 */
export const LOGOUT_TOKEN_MAX_AGE_S = 120;
export const LOGOUT_TOKEN_CLOCK_TOLERANCE_S = 60;

/** Longer than any token a provider sends (a few hundred bytes to 2 KiB): refused unread. */
export const MAX_LOGOUT_TOKEN_CHARS = 8192;

const ACCEPTED_TYPES = new Set(['logout+jwt', 'application/logout+jwt', 'jwt', 'application/jwt']);

const REFUSED = 'The logout token did not verify.';

export interface ProviderLogoutClaims {
  jti: string;
  iat: number;
  /** The provider's subject, or null when the token names only a session. */
  sub: string | null;
  /** The provider's session, or null when the token names only a subject. */
  sid: string | null;
}

export interface LogoutTokenExpectation {
  issuers: string[];
  clientId: string;
  jwksUri: string;
}

/** A short reason for the audit, from jose's refusal (also for Security Event Tokens: tokens/security-event-token.ts). */
export function reasonOf(e: unknown): string {
  // jose reports an `iat` older than the maximum age as expired too, naming the claim.
  if (e instanceof errors.JWTExpired || e instanceof errors.JWTClaimValidationFailed) return e.claim === 'exp' ? 'expired' : `bad_${e.claim}`;
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (e instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'bad_alg';
  return 'malformed';
}

const refused = (code: string, detail: string) => new ProviderError('refused', REFUSED, detail, code);

/** An identifier as sent: a string of 1 to 255 characters, or null when absent; anything else refused. */
function identifier(payload: JWTPayload, claim: 'sub' | 'sid' | 'jti'): string | null {
  const x: unknown = payload[claim];
  if (x === undefined) return null;
  if (typeof x !== 'string' || x === '' || x.length > 255) throw refused(`bad_${claim}`, `${claim} is not a usable identifier`);
  return x;
}

/** Verifies a provider's logout token. Throws {@link ProviderError} (`refused` with a `code` for the audit). */
export async function verifyProviderLogoutToken(token: string, expected: LogoutTokenExpectation, deadline: AbortSignal): Promise<ProviderLogoutClaims> {
  if (token.length > MAX_LOGOUT_TOKEN_CHARS) throw refused('too_long', `${token.length} characters`);
  let payload: JWTPayload;
  // jose types the header's `typ` as text but checks it only when asked to match one: as sent.
  let typ: unknown;
  try {
    const verification = jwtVerify(token, keySetFor(expected.jwksUri), {
      issuer: expected.issuers,
      audience: expected.clientId,
      algorithms: ID_TOKEN_ALGORITHMS,
      requiredClaims: ['iat', 'jti'],
      // jose refuses an `iat` older than this, and (with maxTokenAge set) one in the future; `exp` when present.
      maxTokenAge: LOGOUT_TOKEN_MAX_AGE_S,
      clockTolerance: LOGOUT_TOKEN_CLOCK_TOLERANCE_S,
    });
    ({ payload, protectedHeader: { typ } } = await withDeadline(verification, 'The provider’s signing keys', deadline));
  } catch (e) {
    const failure = verificationFailure(e, REFUSED);
    throw failure.kind === 'refused' && failure.code === undefined ? refused(reasonOf(e), failure.detail ?? '') : failure;
  }
  if (typ !== undefined && (typeof typ !== 'string' || !ACCEPTED_TYPES.has(typ.toLowerCase()))) throw refused('bad_typ', `typ ${String(typ).slice(0, 50)}`);
  if ((payload.azp !== undefined || (Array.isArray(payload.aud) && payload.aud.length > 1)) && payload.azp !== expected.clientId) {
    throw refused('bad_azp', 'azp does not name us');
  }
  const events: unknown = payload.events;
  const event: unknown = typeof events === 'object' && events !== null && BACKCHANNEL_LOGOUT_EVENT in events ? events[BACKCHANNEL_LOGOUT_EVENT] : undefined;
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw refused('bad_events', 'no back-channel logout event');
  if (payload.nonce !== undefined) throw refused('nonce_present', 'a logout token never carries a nonce');
  const sub = identifier(payload, 'sub');
  const sid = identifier(payload, 'sid');
  if (sub === null && sid === null) throw refused('no_subject', 'neither sub nor sid');
  const jti = identifier(payload, 'jti');
  if (jti === null || typeof payload.iat !== 'number') throw refused('bad_jti', 'jti or iat missing');
  return { jti, iat: payload.iat, sub, sid };
}
