/**
 * The Shared Signals (CAEP) receiver (README "Shared Signals (CAEP)"): a configured transmitter
 * pushes Security Event Tokens (RFC 8935); a verified one ends the Gatehouse sessions its event
 * names. Ending goes through {@link endSessions} and {@link endAllSessions} like every other
 * end, so the fence, KV revocation and the apps' logout notices all follow. Nothing here starts
 * a session or mints a token.
 *
 * - `session-revoked`: when the subject names a provider session (`complex` with `session`)
 *   that signed into an account here (storage/provider-sessions.ts), the sessions started from
 *   it end, as a back-channel logout naming that `sid` ends them; otherwise every session of
 *   the account the subject names ends. Unlike a sign-in provider's logout, a transmitter is a
 *   security signal the administrator chose to act on: the user's password and passkey
 *   sessions end too.
 * - `credential-change` with `change_type` `update`, `delete` or `revoke`: every session of the
 *   account ends (a credential that signed them in may be in other hands). `create` ends
 *   nothing: a credential added (a new passkey or factor at the provider) weakens no session,
 *   and ending them all at every enrolment would sign users out for securing their account.
 * - Any other event type is accepted (202) and audited, ending nothing: RFC 8935 lets a
 *   receiver ignore what it does not act on.
 * A subject matching no account is accepted too (202, audited): the answer never says whether
 * an account exists. Accounts are matched by `iss_sub` (an `iss` of the transmitter's
 * `subject_issuers`) or `opaque` through the identities linked to its provider (and an account
 * the subject signed into that has since unlinked it loses the sessions the provider started
 * there), and by `email` only to an account whose address is verified.
 */
import type { Context } from 'hono';
import type { Transmitter } from '../config/shared-signals';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { log } from '../observability/log';
import { newDeadline } from '../providers/http';
import { ProviderError } from '../providers/types';
import { findIdentity } from '../storage/identities';
import { spendProviderPending } from '../storage/mfa-pending';
import { countProviderLogoutReplay, releaseProviderLogoutJti, sharedSignalsSender, useProviderLogoutJti } from '../storage/provider-logout-jtis';
import { providerSessionUsers } from '../storage/provider-sessions';
import { findUserByEmail } from '../storage/users';
import { SET_CLOCK_TOLERANCE_S, SET_MAX_AGE_S, verifySecurityEventToken, type SetClaims, type UserSubject } from '../tokens/security-event-token';
import { nowSeconds as now } from '../util/time';
import { ASCII_ONLY } from './email-address';
import { recordEvent } from './events';
import { endProviderSessions } from './provider-logout';
import { endAllSessions } from './sessions';

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';

/** CAEP 1.0 §3.2's change types; those that can leave a credential in other hands end every session. */
const CHANGE_TYPES = new Set(['create', 'revoke', 'update', 'delete']);
const ENDING_CHANGES = new Set(['revoke', 'update', 'delete']);

/**
 * Refusals of a SET the transmitter itself signed (meant for someone else, of another kind,
 * replayed): alerted. A bad signature, an unknown key, a wrong bearer secret are not: anyone
 * can post one at will (an alert flood); audited as failures.
 */
const SECURITY_REASONS = new Set(['bad_iss', 'bad_aud', 'replayed', 'nonce_present', 'bad_typ']);

/** RFC 8935 §2.3's error codes this receiver answers (`access_denied` has no case here: a transmitter is configured or unknown, 404). */
type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed';

const ERR_OF: Record<string, SetErrorCode> = {
  bad_signature: 'invalid_key',
  unknown_key: 'invalid_key',
  bad_alg: 'invalid_key',
  bad_iss: 'invalid_issuer',
  bad_aud: 'invalid_audience',
};

const DESCRIPTION: Record<SetErrorCode, string> = {
  invalid_key: 'The security event token is not signed by a key the transmitter publishes (asymmetric algorithms only).',
  invalid_issuer: 'The security event token’s issuer is not this transmitter’s.',
  invalid_audience: 'The security event token is not addressed to this receiver.',
  // ASCII only: a 401 repeats it in its WWW-Authenticate header.
  authentication_failed: 'The transmitter authorization (bearer secret) is missing or wrong.',
  invalid_request: 'The security event token was refused',
};

const PROVIDER_STATUS = { bad_response: 'bad_gateway', unavailable: 'unavailable' } as const;

/**
 * The answer to a refused push: the project's `error`/`error_description` and RFC 8935 §2.3's
 * `err`/`description` in one JSON body. 401 for a failed transmitter authentication, else 400.
 */
export function setError(err: SetErrorCode, reason?: string): ApiError {
  const description = err === 'invalid_request' ? `${DESCRIPTION.invalid_request}${reason === undefined ? '' : ` (${reason})`}.` : DESCRIPTION[err];
  return new ApiError(err === 'authentication_failed' ? 'invalid_token' : 'invalid_request', description, { fields: { err, description } });
}

/**
 * Counts a refusal against the client's limit before it is recorded, and throws (429) once the
 * client is over it: a token the transmitter signed for another use (an ID token of a
 * transmitter that is also the identity provider, a SET for another receiver) is anyone's who
 * holds it to post again and again, and each refusal of it is an alert.
 */
export type RefusalCounter = () => Promise<void>;

/** Refuses a push from `transmitter`: counted, audited, then the RFC 8935 error. Ends nothing. */
export async function refuseSecurityEvent(c: Context<AppEnv>, transmitter: Transmitter, countRefusal: RefusalCounter, reason: string, detail?: string): Promise<never> {
  await countRefusal();
  await recordEvent(c, { event: 'shared_signal_refused', outcome: SECURITY_REASONS.has(reason) ? 'security' : 'failure', detail: { transmitter: transmitter.id, reason, detail } });
  throw setError(reason === 'bad_authorization' ? 'authentication_failed' : (ERR_OF[reason] ?? 'invalid_request'), reason);
}

/** What the event asks of us: end sessions (those of a named provider session when one maps), or nothing (why). */
type Action = { end: 'named' | 'all' } | { ignore: string };

/** The action of a verified SET; a malformed event of a known type is refused. */
function actionOf(claims: SetClaims): Action | { refuse: string } {
  if (claims.eventType === SESSION_REVOKED) return { end: 'named' };
  if (claims.eventType === CREDENTIAL_CHANGE) {
    const change = claims.event.change_type;
    if (typeof change !== 'string' || !CHANGE_TYPES.has(change)) return { refuse: 'bad_change_type' };
    return ENDING_CHANGES.has(change) ? { end: 'all' } : { ignore: 'credential_created' };
  }
  return { ignore: 'unknown_event_type' };
}

/** The provider subject a user identifier names (its `sub` at the transmitter's provider), or null. */
function providerSubject(transmitter: Transmitter, user: UserSubject | null): string | null {
  if (user?.format === 'opaque') return user.id;
  if (user?.format === 'iss_sub' && transmitter.subjectIssuers.includes(user.iss)) return user.sub;
  return null;
}

/** The account the user identifier names, or null: by the provider identity linked now, or by a verified address. */
async function accountOf(c: Context<AppEnv>, transmitter: Transmitter, user: UserSubject): Promise<string | null> {
  if (user.format === 'email') {
    // Addresses here are ASCII only (auth/email-address.ts): lower-casing would fold another
    // address into one of ours (the Kelvin sign into `k`), so none outside ASCII names anyone.
    if (!ASCII_ONLY.test(user.email)) return null;
    const account = await findUserByEmail(c.env.DB, user.email);
    return account?.emailVerified ? account.id : null;
  }
  const sub = providerSubject(transmitter, user);
  return sub === null ? null : ((await findIdentity(c.env.DB, transmitter.provider, sub))?.userId ?? null);
}

interface Outcome {
  userIds: string[];
  ended: number;
  /** Why nothing was ended, when nothing could be. */
  reason?: string;
}

/** Ends what a verified, ending event names. */
async function endNamed(c: Context<AppEnv>, transmitter: Transmitter, claims: SetClaims, end: 'named' | 'all', t: number): Promise<Outcome> {
  const { subject } = claims;
  if (subject.kind === 'unsupported') return { userIds: [], ended: 0, reason: 'unsupported_subject' };
  const sub = providerSubject(transmitter, subject.user);
  // A user of another issuer is nobody here, even with a provider session we know: the SET names
  // that session as theirs, and what it names of ours is nothing.
  if (subject.user?.format === 'iss_sub' && sub === null) return { userIds: [], ended: 0, reason: 'subject_issuer_not_mapped' };
  const account = subject.user === null ? null : await accountOf(c, transmitter, subject.user);
  if (end === 'named' && subject.session !== null) {
    const sid = subject.session;
    // The accounts that provider session signed into (as that subject, when it is named as one;
    // only the account an address names, when it is named by address).
    const signedInto = async () => {
      const users = await providerSessionUsers(c.env.DB, transmitter.provider, { sid, subject: sub }, t);
      return subject.user?.format === 'email' ? users.filter((u) => u === account) : users;
    };
    const named = await signedInto();
    if (named.length > 0 || account === null) {
      const { userIds, ended } = await endProviderSessions(c, transmitter.provider, { sid, subject: sub }, signedInto, t);
      return { userIds, ended, ...(userIds.length === 0 ? { reason: 'unknown_subject' } : {}) };
    }
    // A session we cannot map: the user's sessions all end rather than that one live on.
  }
  // Accounts the subject signed into that no longer link it: the sessions the provider started
  // there stay the provider's to end, as a back-channel logout naming the subject ends them.
  const unlinked = sub === null ? [] : (await providerSessionUsers(c.env.DB, transmitter.provider, { sid: null, subject: sub }, t)).filter((u) => u !== account);
  if (account === null && unlinked.length === 0) return { userIds: [], ended: 0, reason: 'unknown_subject' };
  let ended = unlinked.length === 0 ? 0 : (await endProviderSessions(c, transmitter.provider, { sid: null, subject: sub }, async () => unlinked, t)).ended;
  if (account !== null) {
    // A sign-in from the provider still owing its second factor would start a session after this event.
    await spendProviderPending(c.env.DB, transmitter.provider, { sid: null, subject: sub }, [account], t);
    ended += (await endAllSessions(c, account)).length;
  }
  return { userIds: account === null ? unlinked : [account, ...unlinked], ended };
}

/** Verifies `token` from `transmitter` and acts on its event; refusals throw the RFC 8935 error. */
export async function acceptSecurityEvent(c: Context<AppEnv>, transmitter: Transmitter, token: string, countRefusal: RefusalCounter): Promise<void> {
  let claims: SetClaims;
  try {
    claims = await verifySecurityEventToken(token, transmitter, newDeadline());
  } catch (e) {
    if (!(e instanceof ProviderError)) throw e;
    if (e.kind === 'refused') return refuseSecurityEvent(c, transmitter, countRefusal, e.code ?? 'refused', e.detail);
    await recordEvent(c, { event: 'shared_signal_refused', outcome: 'failure', detail: { transmitter: transmitter.id, reason: `transmitter_${e.kind}`, detail: e.detail } });
    throw new ApiError(PROVIDER_STATUS[e.kind], 'The transmitter’s signing keys could not be had: the security event token cannot be checked now. Send it again.', e.kind === 'unavailable' ? { retryAfter: 5 } : {});
  }
  const action = actionOf(claims);
  if ('refuse' in action) return refuseSecurityEvent(c, transmitter, countRefusal, action.refuse, claims.eventType);
  const t = now();
  const sender = sharedSignalsSender(transmitter.id);
  // Kept as long as the SET could be accepted: its `iat` ages out of the window after that.
  if (!(await useProviderLogoutJti(c.env.DB, sender, claims.jti, claims.iat + SET_MAX_AGE_S + SET_CLOCK_TOLERANCE_S, t))) {
    // Whoever holds a captured SET can post it again at will: its first replay alerts, the rest are failures.
    const replays = await countProviderLogoutReplay(c.env.DB, sender, claims.jti);
    return refuseSecurityEvent(c, transmitter, countRefusal, replays > 1 ? 'replayed_again' : 'replayed', `jti ${claims.jti.slice(0, 64)}`);
  }
  let outcome: Outcome;
  try {
    outcome = 'ignore' in action ? { userIds: [], ended: 0, reason: action.ignore } : await endNamed(c, transmitter, claims, action.end, t);
  } catch (e) {
    // Nothing (or not everything) ended: the transmitter's retry of this SET must still count.
    await releaseProviderLogoutJti(c.env.DB, sender, claims.jti).catch((r: unknown) => {
      log.error('shared_signal_jti_release_failed', { transmitter: transmitter.id, error: r instanceof Error ? r.message : String(r) });
    });
    throw e;
  }
  const { subject } = claims;
  await recordEvent(c, {
    event: 'shared_signal_received',
    outcome: 'success',
    userId: outcome.userIds.length === 1 ? outcome.userIds[0] : null,
    detail: {
      transmitter: transmitter.id,
      event_type: claims.eventType.slice(0, 200),
      ...(claims.eventType === CREDENTIAL_CHANGE ? { change_type: claims.event.change_type } : {}),
      subject_format: subject.kind === 'user' ? (subject.user?.format ?? 'session') : subject.format,
      sid: subject.kind === 'user' ? subject.session : null,
      jti: claims.jti,
      sessions_ended: outcome.ended,
      ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
    },
  });
}
