/**
 * The pending state between a first factor and the second (docs/design.md, "Second factors").
 *
 * A sign-in (password, OAuth, or anything else that calls {@link secondFactorGate}) of a user
 * who has a second factor, or whose role requires one, issues no token: it stores a short-lived
 * (`MFA_PENDING_SECONDS`), single-use pending state in D1 and gives the client a 256-bit handle,
 * in the `__Host-gatehouse-mfa` cookie (browsers) or as `mfa_token` (API clients). The handle
 * alone grants nothing: `AUTH_PREFIX/mfa` completes it with a factor, and only then does a
 * session start.
 *
 * For other factors (passkeys): read the state with {@link readPendingSignIn}, check the
 * factor, then call {@link completePendingSignIn} with its `amr` (e.g. `["hwk"]`).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { clearMfaCookie, readMfaCookie, setMfaCookie, setSessionCookies } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { findPending, insertPending, type PendingMode, type PendingPurpose, type PendingSignIn } from '../storage/mfa-pending';
import { findUserById, type User } from '../storage/users';
import { randomId, sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { signedInResponse } from './responses';
import { hasSecondFactor, mfaRequiredByRole } from './second-factor-status';
import { startSession, type IssuedTokens } from './sessions';

export type { PendingMode, PendingPurpose, PendingSignIn };

const HANDLE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export interface FirstFactor {
  user: User;
  /** How the first factor was given (`["pwd"]`, `["github"]`). */
  amr: string[];
  /** The sign-in method the session will show (`password`, a provider id). */
  provider: string | null;
  mode: PendingMode;
  /** Already checked with safeReturnTo. */
  returnTo: string;
}

/** What the user still owes after a first factor: nothing (null), a factor, or setting one up. */
export async function secondFactorOwed(c: Context<AppEnv>, user: User): Promise<PendingPurpose | null> {
  if (await hasSecondFactor(c.env.DB, user.id, c.get('config'))) return 'verify';
  return mfaRequiredByRole(user, c.get('config')) ? 'enrol' : null;
}

/**
 * After a first factor: null if no second factor is owed (start the session as usual), else the
 * answer that sends the client on to `AUTH_PREFIX/mfa` with a new pending state: a 303 for a
 * form post, 401 `mfa_required` for JSON (with `mfa_token` in token mode; in cookie mode the
 * handle travels only in the cookie).
 */
export async function secondFactorGate(c: Context<AppEnv>, first: FirstFactor): Promise<Response | null> {
  const purpose = await secondFactorOwed(c, first.user);
  if (!purpose) return null;
  const config = c.get('config');
  const handle = randomId(32);
  const t = now();
  const ttl = config.MFA_PENDING_SECONDS;
  await insertPending(c.env.DB, {
    idHash: await sha256(handle),
    userId: first.user.id,
    purpose,
    amr: first.amr,
    provider: first.provider,
    mode: first.mode,
    returnTo: first.returnTo,
    createdAt: t,
    expiresAt: t + ttl,
  });
  await recordEvent(c, { event: 'mfa_pending', outcome: 'success', userId: first.user.id, detail: { purpose, first_factor: first.amr.join(',') } });
  c.header('cache-control', 'no-store');
  if (first.mode !== 'token') setMfaCookie(c, handle, ttl);
  if (first.mode === 'form') return c.redirect(`${config.AUTH_PREFIX}/mfa`, 303);
  const description = purpose === 'enrol' ? 'Your account must set up a second factor before signing in.' : 'Enter a code from your authenticator app or a recovery code, or use your passkey.';
  c.header('www-authenticate', `Bearer error="invalid_request", error_description="${description}"`);
  return c.json(
    {
      error: 'mfa_required',
      error_description: description,
      enrolment_required: purpose === 'enrol',
      ...(first.mode === 'token' ? { mfa_token: handle } : {}),
      expires_in: ttl,
      mfa_url: `${config.PUBLIC_URL}${config.AUTH_PREFIX}/mfa`,
    },
    401,
  );
}

export interface ReadPending extends PendingSignIn {
  /** The handle as the client holds it. */
  handle: string;
}

/**
 * The live pending state the request names (`mfaToken` from a JSON body, else the cookie), or a
 * clear `invalid_token` saying why there is none (missing, expired, already completed).
 */
export async function readPendingSignIn(c: Context<AppEnv>, mfaToken?: string): Promise<ReadPending> {
  const handle = mfaToken ?? readMfaCookie(c);
  if (!handle) throw invalidToken('No sign-in is waiting for a second factor. Sign in first.');
  const pending = HANDLE_SHAPE.test(handle) ? await findPending(c.env.DB, await sha256(handle)) : null;
  if (!pending) throw invalidToken('This sign-in is unknown or has expired. Sign in again.');
  if (pending.usedAt !== null) throw invalidToken('This sign-in has already been completed. Sign in again if you need to.');
  if (pending.expiresAt <= now()) throw invalidToken('This sign-in has expired: the second factor must follow within a few minutes. Sign in again.');
  return { ...pending, handle };
}

/** The pending state's user, if still allowed to sign in. */
export async function pendingUser(c: Context<AppEnv>, pending: PendingSignIn): Promise<User> {
  const user = await findUserById(c.env.DB, pending.userId);
  if (!user) throw invalidToken('This sign-in is unknown or has expired. Sign in again.');
  if (user.disabledAt !== null) throw new ApiError('forbidden', 'This account is disabled.');
  return user;
}

/**
 * Spends the pending state (once: a replay or a concurrent completion is refused) and starts the
 * session with the first factor's `amr`, `factorAmr` and `mfa`. Returns the tokens; nothing is
 * sent yet (see {@link completePendingSignIn}).
 */
export async function finishPendingSignIn(c: Context<AppEnv>, pending: PendingSignIn, user: User, factorAmr: readonly string[]): Promise<IssuedTokens> {
  const amr = [...new Set([...pending.amr, ...factorAmr, 'mfa'])];
  // One transaction: the state is spent exactly when the session starts (a replay is refused).
  const tokens = await startSession(c, user, pending.provider, amr, { spendsPending: pending.idHash });
  clearMfaCookie(c);
  await recordEvent(c, { event: 'login', outcome: 'success', userId: user.id, detail: { method: 'second_factor', amr: amr.join(','), sid: tokens.session.id } });
  return tokens;
}

/** Answers a completed sign-in the way the client started it: a 303 to `return_to`, or JSON. */
export function signedInAfterPending(c: Context<AppEnv>, pending: PendingSignIn, user: User, tokens: IssuedTokens): Response {
  if (pending.mode === 'form') {
    setSessionCookies(c, tokens.accessToken, tokens.refreshToken, tokens.sessionExpiresAt - now());
    c.header('cache-control', 'no-store');
    return c.redirect(pending.returnTo, 303);
  }
  return signedInResponse(c, user, tokens, pending.mode);
}

/**
 * Completes a pending sign-in with a second factor the caller has already checked (`factorAmr`:
 * `["otp"]`, `["hwk"]`...) and answers the client. The one call another factor's route needs.
 *
 * @example
 * const pending = await readPendingSignIn(c, body.mfa_token);
 * // ...verify the passkey assertion for pending.userId...
 * return completePendingSignIn(c, pending, ['hwk']);
 */
export async function completePendingSignIn(c: Context<AppEnv>, pending: PendingSignIn, factorAmr: readonly string[]): Promise<Response> {
  if (pending.purpose !== 'verify') throw new ApiError('forbidden', 'This account must set up a second factor first.');
  const user = await pendingUser(c, pending);
  const tokens = await finishPendingSignIn(c, pending, user, factorAmr);
  return signedInAfterPending(c, pending, user, tokens);
}
