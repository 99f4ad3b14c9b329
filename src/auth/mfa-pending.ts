/**
 * Reading the pending state between a first factor and the second (docs/design.md, "Second
 * factors").
 *
 * A sign-in (auth/sign-in.ts) of a user who has a second factor, or whose role requires one,
 * issues no token: it stores a short-lived (`MFA_PENDING_SECONDS`), single-use pending state in
 * D1 and gives the client a 256-bit handle, in the `__Host-gatehouse-mfa` cookie (browsers) or
 * as `mfa_token` (API clients). The handle alone grants nothing: `AUTH_PREFIX/mfa` checks a
 * factor for the state read here, and auth/sign-in.ts's `completeSignIn` starts the session.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { readMfaCookie } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { findPending, type PendingMode, type PendingPurpose, type PendingSignIn } from '../storage/mfa-pending';
import { findUserById, type User } from '../storage/users';
import { sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';

export type { PendingMode, PendingPurpose, PendingSignIn };

const HANDLE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

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
