/**
 * Security Event Tokens (RFC 8417) a Shared Signals transmitter pushes to us (RFC 8935),
 * verified with jose against the transmitter's published keys through the same key-set cache
 * and deadline as a provider's ID and logout tokens (providers/id-token.ts `keySetFor`):
 * - signature by a key from the transmitter's `jwks_uri`, asymmetric algorithms only;
 * - the `typ` header `secevent+jwt` (or its media type form), required: RFC 8417 §2.3 and the
 *   Shared Signals Framework type SETs explicitly so that no other JWT (an ID token, a logout
 *   token, an access token) passes as one, and a SET passes as none of those;
 * - `iss` the transmitter's, `aud` the audience configured for us;
 * - `iat` present and within {@link SET_MAX_AGE_S} of now either way (60 s tolerance); `exp`,
 *   when present, not past; `jti` present (single use is the caller's, in D1);
 * - `events` an object with exactly one member (the Shared Signals Framework's rule), itself an
 *   object; no `nonce`;
 * - the subject: `sub_id` (RFC 9493 subject identifiers), or the older CAEP drafts'
 *   `events[type].subject`; one of the formats read by {@link parseSubject}.
 */
import { jwtVerify, type JWTPayload } from 'jose';
import { withDeadline } from '../providers/http';
import { ID_TOKEN_ALGORITHMS, keySetFor, verificationFailure } from '../providers/id-token';
import { ProviderError } from '../providers/types';
import { reasonOf } from './provider-logout-token';

/**
 * A transmitter pushes a SET as its event happens and retries a failed delivery for a while:
 * five minutes covers the retries and clock skew; an older one is kept from elsewhere. The
 * `jti`s accepted are kept as long as a SET can be accepted.
 */
export const SET_MAX_AGE_S = 300;
export const SET_CLOCK_TOLERANCE_S = 60;

/** Longer than any SET a transmitter sends (a few hundred bytes to 2 KiB): refused unread. */
export const MAX_SET_CHARS = 8192;

const REFUSED = 'The security event token did not verify.';

/** A user as a SET names them (RFC 9493 §3.2): an address, a subject at an issuer, or an opaque id (the subject at the transmitter's provider). */
export type UserSubject = { format: 'email'; email: string } | { format: 'iss_sub'; iss: string; sub: string } | { format: 'opaque'; id: string };

export type SetSubject =
  /** A user and/or one of their sessions at the provider (`session`: its `sid`). */
  | { kind: 'user'; user: UserSubject | null; session: string | null }
  /** A well-formed identifier of a format (or a complex subject of members) no account here can be matched by. */
  | { kind: 'unsupported'; format: string };

export interface SetClaims {
  jti: string;
  iat: number;
  /** The one event's type URI, and its payload. */
  eventType: string;
  event: Record<string, unknown>;
  subject: SetSubject;
}

export interface SetExpectation {
  issuer: string;
  audience: string;
  jwksUri: string;
}

const refused = (code: string, detail: string) => new ProviderError('refused', REFUSED, detail, code);

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A member of a subject identifier: a string of 1 to `max` characters, or the SET is refused. */
function text(x: Record<string, unknown>, member: string, max = 255): string {
  const value = x[member];
  if (typeof value !== 'string' || value === '' || value.length > max) throw refused('bad_subject', `${String(x.format).slice(0, 20)} subject without a usable ${member}`);
  return value;
}

/** A simple subject identifier naming a user; an unknown format is unsupported, a malformed one refused. */
function userSubject(x: unknown): UserSubject | { unsupported: string } {
  if (!isObject(x) || typeof x.format !== 'string') throw refused('bad_subject', 'a subject identifier is an object with a format');
  switch (x.format) {
    case 'email':
      return { format: 'email', email: text(x, 'email', 320) };
    case 'iss_sub':
      return { format: 'iss_sub', iss: text(x, 'iss', 2048), sub: text(x, 'sub') };
    case 'opaque':
      return { format: 'opaque', id: text(x, 'id') };
    default:
      return { unsupported: x.format.slice(0, 40) };
  }
}

/**
 * The subject a SET names. `complex` (RFC 9493 §3.2.7 and the Shared Signals Framework) is
 * read for its `user` and `session` members: a session is an `opaque` identifier whose `id` is
 * the provider's session (`sid`). A complex subject of neither (a tenant, a device) names no
 * account here: unsupported, as are formats such as `phone_number` or `account`.
 */
export function parseSubject(x: unknown): SetSubject {
  if (!isObject(x) || typeof x.format !== 'string') throw refused('bad_subject', 'no subject identifier (sub_id) with a format');
  if (x.format !== 'complex') {
    const user = userSubject(x);
    return 'unsupported' in user ? { kind: 'unsupported', format: user.unsupported } : { kind: 'user', user, session: null };
  }
  let user: UserSubject | null = null;
  if (x.user !== undefined) {
    const u = userSubject(x.user);
    if ('unsupported' in u) return { kind: 'unsupported', format: `complex.user ${u.unsupported}` };
    user = u;
  }
  let session: string | null = null;
  if (x.session !== undefined) {
    if (!isObject(x.session) || x.session.format !== 'opaque') return { kind: 'unsupported', format: 'complex.session' };
    session = text(x.session, 'id');
  }
  if (user === null && session === null) return { kind: 'unsupported', format: 'complex' };
  return { kind: 'user', user, session };
}

/** Verifies a transmitter's SET. Throws {@link ProviderError} (`refused` with a `code` for the audit and the answer). */
export async function verifySecurityEventToken(token: string, expected: SetExpectation, deadline: AbortSignal): Promise<SetClaims> {
  if (token.length > MAX_SET_CHARS) throw refused('too_long', `${token.length} characters`);
  let payload: JWTPayload;
  try {
    const verification = jwtVerify(token, keySetFor(expected.jwksUri), {
      issuer: expected.issuer,
      audience: expected.audience,
      algorithms: ID_TOKEN_ALGORITHMS,
      // jose compares the media type form too (`application/secevent+jwt`); an untyped SET fails.
      typ: 'secevent+jwt',
      requiredClaims: ['iat', 'jti'],
      // jose refuses an `iat` older than this, and (with maxTokenAge set) one in the future; `exp` when present.
      maxTokenAge: SET_MAX_AGE_S,
      clockTolerance: SET_CLOCK_TOLERANCE_S,
    });
    ({ payload } = await withDeadline(verification, 'The transmitter’s signing keys', deadline));
  } catch (e) {
    const failure = verificationFailure(e, REFUSED);
    throw failure.kind === 'refused' && failure.code === undefined ? refused(reasonOf(e), failure.detail ?? '') : failure;
  }
  const events: unknown = payload.events;
  if (!isObject(events)) throw refused('bad_events', 'no events claim');
  const types = Object.keys(events);
  if (types.length !== 1) throw refused('bad_events', `${types.length} events (exactly one is allowed)`);
  const eventType = types[0]!;
  const event = events[eventType];
  if (!isObject(event)) throw refused('bad_events', 'the event is not an object');
  if (payload.nonce !== undefined) throw refused('nonce_present', 'a security event token never carries a nonce');
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 255 || typeof payload.iat !== 'number') throw refused('bad_jti', 'jti or iat missing or unusable');
  const subject = parseSubject(payload.sub_id ?? event.subject);
  return { jti: payload.jti, iat: payload.iat, eventType, event, subject };
}
