/**
 * Second factors: the authenticator app (TOTP) and recovery codes. Enrolment, confirmation,
 * removal, regeneration, and checking a code a user types, with single use and a per-account
 * attempt limit. Loaded by dynamic import from the handlers that need it (it pulls in otpauth).
 *
 * A code is counted as an attempt *before* it is checked, in one conditional statement
 * (storage/second-factors.ts), and a success clears the count: `MFA_ATTEMPT_LIMIT` wrong codes
 * within 15 minutes and the account waits for the window to end (429), however many requests
 * run in parallel. With 6 digits, ±1 step and the default 5 per 15 minutes, a guesser needs
 * about 700 days on average.
 *
 * Recovery codes are stored as plain SHA-256: each holds 80 random bits, so unlike a password
 * there is no dictionary to try and 2^80 hashes are out of reach offline; a slow hash would only
 * cost CPU on every use.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { totpSecretKey } from '../crypto/second-factor-key';
import { ApiError, badRequest } from '../http/errors';
import {
  clearSecondFactorAttempts,
  countUnusedRecoveryCodes,
  deleteSecondFactors,
  findTotpFactor,
  putPendingTotp,
  replaceRecoveryCodes,
  reserveSecondFactorAttempt,
  secondFactorWindowStart,
  useRecoveryCode,
  useTotpStep,
} from '../storage/second-factors';
import type { User } from '../storage/users';
import { openTotpSecret, sealTotpSecret } from '../tokens/totp-secret-crypto';
import { sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { sendAccountNotice } from '../mail/delivery';
import { ATTEMPT_WINDOW_SECONDS } from './second-factor-status';
import { matchingStep, newRecoveryCode, newTotpSecret, otpauthUri } from './totp-code';

export { ATTEMPT_WINDOW_SECONDS };
export const RECOVERY_CODE_COUNT = 10;

/** How the factor was given: `otp` (RFC 8176) covers both, a recovery code being a one-time password too. */
export type FactorUsed = 'totp' | 'recovery_code';

type Code = { kind: 'totp'; code: string } | { kind: 'recovery'; code: string };

/** Spaces and dashes are how people copy codes; anything else that is not a code is a typo, not a guess. */
function readCode(raw: string): Code {
  const code = raw.replace(/[\s-]/g, '').toLowerCase();
  if (/^\d{6}$/.test(code)) return { kind: 'totp', code };
  if (/^[a-z2-7]{16}$/.test(code)) return { kind: 'recovery', code };
  throw badRequest('Enter the 6-digit code from your authenticator app, or one of your recovery codes.');
}

async function keyFor(c: Context<AppEnv>): Promise<Uint8Array> {
  const key = totpSecretKey(c.get('config'));
  if (!key) throw new ApiError('forbidden', 'Authenticator apps are not available on this gateway (TOKEN_ENCRYPTION_KEY is not set).');
  return key;
}

/** Counts one attempt or refuses with 429 while the account is at its limit. */
async function reserveAttempt(c: Context<AppEnv>, userId: string): Promise<number> {
  const t = now();
  const limit = c.get('config').MFA_ATTEMPT_LIMIT;
  const count = await reserveSecondFactorAttempt(c.env.DB, userId, limit, ATTEMPT_WINDOW_SECONDS, t);
  if (count !== null) return count;
  const start = await secondFactorWindowStart(c.env.DB, userId);
  const wait = start === null ? 1 : Math.max(1, start + ATTEMPT_WINDOW_SECONDS - t);
  throw new ApiError('rate_limited', 'Too many wrong codes for this account. Try again later.', { retryAfter: wait });
}

async function refuse(c: Context<AppEnv>, userId: string, count: number, reason: string, message: string): Promise<never> {
  const limit = c.get('config').MFA_ATTEMPT_LIMIT;
  await recordEvent(c, {
    event: count === limit ? 'second_factor_failure_burst' : 'second_factor',
    outcome: count === limit ? 'security' : 'failure',
    userId,
    detail: { reason, failures: count },
  });
  throw new ApiError('invalid_credentials', message);
}

async function totpStep(c: Context<AppEnv>, userId: string, sealed: string, code: string): Promise<number | null> {
  const secret = await openTotpSecret(await keyFor(c), userId, sealed);
  if (secret === null) throw new ApiError('server_error', 'The authenticator app of this account cannot be read.');
  return matchingStep(secret, code, Date.now());
}

/**
 * Checks a second-factor code of a user with a confirmed factor: a TOTP code (single use: its
 * time step must be later than the last accepted one) or an unused recovery code (spent; a
 * security event). Counts against the attempt limit; throws `invalid_credentials` or
 * `rate_limited`; clears the count on success.
 */
export async function verifySecondFactor(c: Context<AppEnv>, user: User, raw: string): Promise<FactorUsed> {
  const code = readCode(raw);
  const count = await reserveAttempt(c, user.id);
  const t = now();
  if (code.kind === 'totp') {
    const factor = await findTotpFactor(c.env.DB, user.id);
    if (!factor || factor.confirmedAt === null) return refuse(c, user.id, count, 'no_totp', 'This account has no authenticator app. Use a recovery code.');
    const step = await totpStep(c, user.id, factor.secretEncrypted, code.code);
    if (step === null) return refuse(c, user.id, count, 'wrong_code', 'The code is incorrect or has expired. Enter the current code from your authenticator app.');
    if (!(await useTotpStep(c.env.DB, user.id, step, t, false))) {
      return refuse(c, user.id, count, 'reused_code', 'This code has already been used. Wait for the next code in your authenticator app.');
    }
    await clearSecondFactorAttempts(c.env.DB, user.id);
    return 'totp';
  }
  if (!(await useRecoveryCode(c.env.DB, user.id, await sha256(code.code), t))) {
    return refuse(c, user.id, count, 'wrong_recovery_code', 'This recovery code is incorrect or has already been used.');
  }
  await clearSecondFactorAttempts(c.env.DB, user.id);
  const left = await countUnusedRecoveryCodes(c.env.DB, user.id);
  await recordEvent(c, {
    event: 'recovery_code_used',
    outcome: 'security',
    userId: user.id,
    detail: { remaining: left, message: 'A recovery code was used to sign in. If this was not the account owner, the password and codes are known to someone else.' },
  });
  return 'recovery_code';
}

/**
 * How long an unconfirmed authenticator secret is shown again rather than replaced: time to
 * install an app and scan the code. Showing the set-up page never replaces a fresh one, so
 * neither a reload nor another site's link to the page can break an enrolment in progress.
 */
export const TOTP_ENROLMENT_FRESH_S = 30 * 60;

/**
 * The authenticator app to set up: the unconfirmed secret if it is fresh (the same QR code on
 * every visit), else a new one, stored encrypted and unconfirmed in place of a stale or
 * unreadable one. If another request stored one meanwhile, that one is shown. `conflict` if an
 * app is already confirmed (remove it first).
 */
export async function totpEnrolment(c: Context<AppEnv>, user: User): Promise<{ secret: string; uri: string }> {
  const key = await keyFor(c);
  const t = now();
  const shown = async (secret: string) => ({ secret, uri: await otpauthUri(secret, c.get('config').APP_NAME, user.email) });
  const alreadySetUp = () => new ApiError('conflict', 'An authenticator app is already set up. Remove it first to set up another.');
  const existing = await findTotpFactor(c.env.DB, user.id);
  if (existing && existing.confirmedAt !== null) throw alreadySetUp();
  if (existing && existing.createdAt > t - TOTP_ENROLMENT_FRESH_S) {
    const secret = await openTotpSecret(key, user.id, existing.secretEncrypted);
    if (secret !== null) return shown(secret);
  }
  const secret = newTotpSecret();
  if (await putPendingTotp(c.env.DB, user.id, await sealTotpSecret(key, user.id, secret), t, existing?.secretEncrypted ?? null)) return shown(secret);
  // Another request got there first: show what it stored.
  const winner = await findTotpFactor(c.env.DB, user.id);
  if (!winner || winner.confirmedAt !== null) throw alreadySetUp();
  const stored = await openTotpSecret(key, user.id, winner.secretEncrypted);
  if (stored === null) throw new ApiError('server_error', 'The authenticator app being set up cannot be read. Try again.');
  return shown(stored);
}

/** The authenticator app being set up (unconfirmed), to show again after a wrong code; null if none. */
export async function currentTotpEnrolment(c: Context<AppEnv>, user: User): Promise<{ secret: string; uri: string } | null> {
  const factor = await findTotpFactor(c.env.DB, user.id);
  if (!factor || factor.confirmedAt !== null) return null;
  const secret = await openTotpSecret(await keyFor(c), user.id, factor.secretEncrypted);
  return secret === null ? null : { secret, uri: await otpauthUri(secret, c.get('config').APP_NAME, user.email) };
}

/**
 * Confirms the unconfirmed authenticator app with its first code (counted like any code). The
 * first factor of an account also gets its recovery codes, returned here to be shown once.
 */
export async function confirmTotpEnrolment(c: Context<AppEnv>, user: User, raw: string): Promise<{ recoveryCodes: string[] | null }> {
  const code = readCode(raw);
  if (code.kind !== 'totp') throw badRequest('Enter the 6-digit code your authenticator app shows.');
  const factor = await findTotpFactor(c.env.DB, user.id);
  if (!factor) throw badRequest('No authenticator app is being set up. Start again from your account page.');
  if (factor.confirmedAt !== null) throw new ApiError('conflict', 'The authenticator app is already set up.');
  const count = await reserveAttempt(c, user.id);
  const step = await totpStep(c, user.id, factor.secretEncrypted, code.code);
  if (step === null || !(await useTotpStep(c.env.DB, user.id, step, now(), true))) {
    return refuse(c, user.id, count, 'wrong_enrolment_code', 'The code is incorrect or has expired. Check the time on your device and enter the current code.');
  }
  await clearSecondFactorAttempts(c.env.DB, user.id);
  await recordEvent(c, { event: 'totp_enrolled', outcome: 'success', userId: user.id });
  const recoveryCodes = await recoveryCodesIfNone(c, user);
  sendAccountNotice(c, user, 'totp_added');
  return { recoveryCodes };
}

/**
 * Recovery codes belong to "has any second factor": the first factor set up (an authenticator
 * app or a passkey) gets ten, returned to be shown once; null if unused ones exist already.
 */
export async function recoveryCodesIfNone(c: Context<AppEnv>, user: User): Promise<string[] | null> {
  return (await countUnusedRecoveryCodes(c.env.DB, user.id)) === 0 ? regenerateRecoveryCodes(c, user, 'first_factor') : null;
}

/** Ten new recovery codes, replacing every earlier one; the codes themselves are never stored. */
export async function regenerateRecoveryCodes(c: Context<AppEnv>, user: User, why: 'first_factor' | 'regenerated' = 'regenerated'): Promise<string[]> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  const hashes = await Promise.all(codes.map((code) => sha256(code.replaceAll('-', ''))));
  if (!(await replaceRecoveryCodes(c.env.DB, user.id, hashes, now()))) {
    throw new ApiError('conflict', 'No second factor is set up on this account any more, so no recovery codes were made.');
  }
  await recordEvent(c, { event: 'recovery_codes_generated', outcome: 'success', userId: user.id, detail: { why } });
  // The first factor's own notice covers its codes.
  if (why === 'regenerated') sendAccountNotice(c, user, 'recovery_codes_regenerated');
  return codes;
}

/**
 * Removes the authenticator app; the recovery codes go too only if no passkey is left for them
 * to stand in for (one transaction, storage/second-factors.ts). An admin's reset (`by.admin`)
 * removes the passkeys as well: a reset is for a user who lost their factors, and a passkey
 * left behind would still be demanded at the next sign-in (audited with the counts).
 */
export async function removeSecondFactors(
  c: Context<AppEnv>,
  user: User,
  by: { admin?: string } = {},
): Promise<{ totp: boolean; recoveryCodes: number; passkeys: number }> {
  const removed = await deleteSecondFactors(c.env.DB, user.id, { passkeys: by.admin !== undefined });
  await recordEvent(c, {
    event: by.admin ? 'admin_second_factors_reset' : 'totp_removed',
    outcome: 'success',
    userId: user.id,
    detail: { totp: removed.totp, recovery_codes: removed.recoveryCodes, ...(by.admin ? { admin: by.admin, passkeys: removed.passkeys } : {}) },
  });
  if (by.admin) sendAccountNotice(c, user, 'admin_reset');
  else if (removed.totp) sendAccountNotice(c, user, 'totp_removed');
  return removed;
}
