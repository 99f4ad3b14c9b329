/**
 * Provider-initiated sign-out (README "Provider-initiated sign-out"): a sign-in provider's
 * back-channel logout (OpenID Connect Back-Channel Logout 1.0) ends the Gatehouse sessions
 * started from the provider session or subject its logout token names. Ending goes through
 * {@link endSessions} like every other end, so the fence, KV revocation and the apps' own
 * back-channel logouts all follow. Nothing here starts a session or mints a token.
 *
 * Which sessions: the token's `sub` finds the account (the identity linked to that provider
 * subject), and the accounts that provider session (or that subject) signed into, recorded at
 * sign-in, whether or not the identity is still linked;
 * with a `sid`, the sessions started from that provider session end (and any from that
 * provider that recorded no `sid`: sessions of earlier versions cannot be told apart, so they
 * end rather than live on); with only `sub`, every session of that account started from that
 * provider (the specification's "all sessions of the subject at the RP", read as the sessions
 * this provider vouched for: a password or passkey session of the same account is not the
 * provider's to end).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { log } from '../observability/log';
import { endpointsOf, providerContext } from '../providers/sign-in';
import { newDeadline } from '../providers/http';
import { ProviderError, type OidcProvider } from '../providers/types';
import { findIdentity } from '../storage/identities';
import { spendProviderPending } from '../storage/mfa-pending';
import { countProviderLogoutReplay, releaseProviderLogoutJti, useProviderLogoutJti } from '../storage/provider-logout-jtis';
import { providerSessionUsers, recordEndedProviderSession } from '../storage/provider-sessions';
import { providerSessionIds } from '../storage/sessions';
import { LOGOUT_TOKEN_CLOCK_TOLERANCE_S, LOGOUT_TOKEN_MAX_AGE_S, verifyProviderLogoutToken } from '../tokens/provider-logout-token';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { recordEvent } from './events';
import { endSessions } from './sessions';

/**
 * Refusals of a token the provider itself signed (meant for someone else, of another kind, or
 * replayed): alerted. A bad signature, an unknown key or a refused algorithm is not: anyone can
 * post one at will, and each alert would reach the webhook (an alert flood); audited as failures.
 */
const SECURITY_REASONS = new Set(['bad_iss', 'bad_aud', 'bad_azp', 'replayed', 'nonce_present', 'bad_typ']);

const PROVIDER_STATUS = { bad_response: 'bad_gateway', unavailable: 'unavailable' } as const;

/**
 * How long a provider session a logout token ended is remembered, before the second factor's
 * time: an authorization code issued in it lives at most 10 minutes (RFC 6749 §4.1.2), with
 * room for clock skew and the provider's retries.
 */
const ENDED_SESSION_KEEP_S = 15 * 60;

/**
 * Counts a refusal against the client's limit before it is recorded, and throws (429) once the
 * client is over it: a token the provider signed for another client is anyone's who holds it to
 * post again and again, and each refusal of it is an alert.
 */
export type RefusalCounter = () => Promise<void>;

/** Refuses a back-channel logout request from `provider`: counted, audited, then 400 `invalid_request`. Ends nothing. */
export async function refuseProviderLogout(c: Context<AppEnv>, provider: OidcProvider, countRefusal: RefusalCounter, reason: string, detail?: string): Promise<never> {
  await countRefusal();
  await recordEvent(c, { event: 'provider_logout_refused', outcome: SECURITY_REASONS.has(reason) ? 'security' : 'failure', detail: { provider: provider.id, reason, detail } });
  throw new ApiError('invalid_request', 'The logout token was refused.');
}

/**
 * The accounts whose sessions the token may name: with `sub`, the one linked to that provider
 * subject; and those the provider signed into from that session (`sid`) or as that subject
 * (recorded at sign-in: storage/provider-sessions.ts), whether or not the identity is still
 * linked to them: a session the provider started stays the provider's to end after the account
 * unlinks it. With both, a record counts only for that subject.
 */
async function accountsNamed(c: Context<AppEnv>, provider: OidcProvider, sub: string | null, sid: string | null, t: number): Promise<string[]> {
  const [identity, signedInto] = await Promise.all([
    sub === null ? null : findIdentity(c.env.DB, provider.id, sub),
    providerSessionUsers(c.env.DB, provider.id, { sid, subject: sub }, t),
  ]);
  return [...new Set([...(identity === null ? [] : [identity.userId]), ...signedInto])];
}

export interface ProviderSessionsEnded {
  /** The accounts named. */
  userIds: string[];
  /** Sessions this call ended. */
  ended: number;
  /** Pending sign-ins (owing a second factor) this call spent. */
  pendingSpent: number;
}

/**
 * Ends what a provider's sign-out names: its session `sid` (with `subject`, for that subject
 * only) or, with no `sid`, the sessions `provider` started for the accounts `accountsNamed`
 * finds. The ended provider session is remembered first, so a sign-in from it still under way
 * is refused when it arrives; that provider's pending sign-ins it names are spent. Used by the
 * back-channel logout and by Shared Signals' session-revoked (auth/shared-signals.ts).
 */
export async function endProviderSessions(
  c: Context<AppEnv>,
  provider: string,
  named: { sid: string | null; subject: string | null },
  accountsNamed: () => Promise<string[]>,
  t: number,
): Promise<ProviderSessionsEnded> {
  const { sid, subject } = named;
  // Remembered first: a sign-in from this provider session that is still under way (its code
  // not yet exchanged, its second factor not yet given) is refused when it arrives.
  if (sid !== null) await recordEndedProviderSession(c.env.DB, provider, sid, subject, t + ENDED_SESSION_KEEP_S + c.get('config').MFA_PENDING_SECONDS, t);
  const userIds = await accountsNamed();
  // A sign-in from that provider session still owing its second factor would start a session
  // after this sign-out: spent first (it has no session yet, so nothing else finds it).
  const pendingSpent = await spendProviderPending(c.env.DB, provider, named, userIds, t);
  let ended = 0;
  for (const userId of userIds) ended += await endSessions(c, userId, await providerSessionIds(sessionsOf(c, userId), provider, sid, t));
  return { userIds, ended, pendingSpent };
}

/** Verifies `token` from `provider` and ends the sessions it names; returns how many this call ended. */
export async function acceptProviderLogout(c: Context<AppEnv>, provider: OidcProvider, token: string, countRefusal: RefusalCounter): Promise<number> {
  const config = c.get('config');
  const deadline = newDeadline();
  let claims;
  try {
    const endpoints = await endpointsOf(provider, providerContext(config, provider), deadline);
    claims = await verifyProviderLogoutToken(token, { issuers: [endpoints.issuer, ...(provider.issuerAliases ?? [])], clientId: provider.clientId, jwksUri: endpoints.jwksUri }, deadline);
  } catch (e) {
    if (!(e instanceof ProviderError)) throw e;
    if (e.kind === 'refused') return refuseProviderLogout(c, provider, countRefusal, e.code ?? 'refused', e.detail);
    await recordEvent(c, { event: 'provider_logout_refused', outcome: 'failure', detail: { provider: provider.id, reason: `provider_${e.kind}`, detail: e.detail } });
    throw new ApiError(PROVIDER_STATUS[e.kind], `${provider.name}’s signing keys could not be had: the logout token cannot be checked now. Send it again.`, e.kind === 'unavailable' ? { retryAfter: 5 } : {});
  }
  const { sub, sid, jti, iat } = claims;
  const t = now();
  // Kept as long as the token could be accepted: its `iat` ages out of the window after that.
  if (!(await useProviderLogoutJti(c.env.DB, provider.id, jti, iat + LOGOUT_TOKEN_MAX_AGE_S + LOGOUT_TOKEN_CLOCK_TOLERANCE_S, t))) {
    // Whoever holds a captured token can post it again at will: its first replay alerts, the rest are failures.
    const replays = await countProviderLogoutReplay(c.env.DB, provider.id, jti);
    return refuseProviderLogout(c, provider, countRefusal, replays > 1 ? 'replayed_again' : 'replayed', `jti ${jti.slice(0, 64)}`);
  }
  let outcome: ProviderSessionsEnded;
  try {
    outcome = await endProviderSessions(c, provider.id, { sid, subject: sub }, () => accountsNamed(c, provider, sub, sid, t), t);
  } catch (e) {
    // Nothing (or not everything) ended: the provider's retry of this token must still count.
    await releaseProviderLogoutJti(c.env.DB, provider.id, jti).catch((r: unknown) => {
      log.error('provider_logout_jti_release_failed', { provider: provider.id, error: r instanceof Error ? r.message : String(r) });
    });
    throw e;
  }
  const { userIds, ended, pendingSpent } = outcome;
  await recordEvent(c, {
    event: 'provider_logout_received',
    outcome: 'success',
    userId: userIds.length === 1 ? userIds[0] : null,
    detail: { provider: provider.id, sub, sid, jti, sessions_ended: ended, pending_spent: pendingSpent, ...(userIds.length === 0 ? { reason: 'unknown_subject' } : {}) },
  });
  return ended;
}
