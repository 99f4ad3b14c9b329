/**
 * Sign-in by a one-time code sent by mail (`EMAIL_LOGIN=enabled`, and a mail transport).
 *
 * - The code: 8 random digits, valid 10 minutes, once, for 5 guesses (then it is dead until a
 *   new one is requested). Stored as SHA-256 of (address, code): not readable from a backup.
 * - Requesting answers the same for every address, and does all its work after the answer
 *   (mail/delivery.ts `sendInBackground`): looking the address up, storing the code (a D1 write
 *   only a known address gets) and sending it. So neither the answer nor its timing says
 *   whether an account exists. The price: a relay failure cannot become a 503 here; it is
 *   logged, and the user asks for another code. A new code for the same address at most once a
 *   minute (the store refuses sooner ones); a code the relay could not send is deleted again, so
 *   the retry is not held back.
 * - Guessing goes through the same per-account back-off as password sign-in (unknown addresses
 *   are counted alike), on top of the 5 guesses per code and the per-IP burst limit.
 * - A correct code proves the address, as a verified provider sign-in does: an unverified
 *   account is claimed (auth/mailbox-proof.ts: its password, factors, other sign-in methods and
 *   sessions removed: someone may have registered the address without owning it).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { sendInBackground, sendNow } from '../mail/delivery';
import { emailCodeMessage } from '../mail/messages';
import { mailEnabled } from '../mail/send';
import { deleteEmailCode, redeemEmailCode, storeEmailCode } from '../storage/email-codes';
import { findUserByEmail, type User } from '../storage/users';
import { sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { recordLoginFailure, recordLoginSuccess, reserveLoginAttempt } from './login-throttle';
import { proveMailbox } from './mailbox-proof';

export const CODE_TTL_SECONDS = 600;
export const CODE_MAX_ATTEMPTS = 5;
export const CODE_MIN_INTERVAL_SECONDS = 60;
export const CODE_DIGITS = 8;

/** Whether this gateway offers sign-in by email code (the routes add the per-IP burst limit). */
export function emailLoginEnabled(c: Context<AppEnv>): boolean {
  const config = c.get('config');
  return config.EMAIL_LOGIN === 'enabled' && mailEnabled(config);
}

function requireEnabled(c: Context<AppEnv>): void {
  if (!emailLoginEnabled(c)) throw new ApiError('not_found', 'Sign-in by email code is not enabled on this gateway.');
}

/** 8 uniformly random digits (rejection sampling: `% 10^8` of any 32-bit value would favour low codes). */
function newCode(): string {
  const limit = Math.floor(2 ** 32 / 10 ** CODE_DIGITS) * 10 ** CODE_DIGITS;
  const buf = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(buf);
    if (buf[0]! < limit) return String(buf[0]! % 10 ** CODE_DIGITS).padStart(CODE_DIGITS, '0');
  }
}

const codeHash = (email: string, code: string) => sha256(`email-code:${email}:${code}`);

/**
 * Sends a code to the address if it has an account. Returns before any of that work is done,
 * the same for every address.
 */
export async function requestEmailCode(c: Context<AppEnv>, email: string): Promise<void> {
  requireEnabled(c);
  sendInBackground(c, 'email_code', () => mailCode(c, email));
}

async function mailCode(c: Context<AppEnv>, email: string): Promise<void> {
  const user = await findUserByEmail(c.env.DB, email);
  if (!user || user.disabledAt !== null) return;
  const code = newCode();
  const hash = await codeHash(user.email, code);
  const stored = await storeEmailCode(c.env.DB, { email: user.email, codeHash: hash, now: now(), ttlSeconds: CODE_TTL_SECONDS, minIntervalSeconds: CODE_MIN_INTERVAL_SECONDS });
  if (!stored) return;
  try {
    await sendNow(c, emailCodeMessage(c.get('config'), user.email, code, CODE_TTL_SECONDS / 60));
  } catch (e) {
    // Not sent: not kept either, or the once-a-minute limit would swallow the person's retry.
    await deleteEmailCode(c.env.DB, user.email, hash);
    throw e;
  }
}

/** Checks a code and returns the user to sign in. Wrong, expired, used and unknown all answer alike. */
export async function verifyEmailCode(c: Context<AppEnv>, email: string, code: string): Promise<User> {
  requireEnabled(c);
  const attempt = await reserveLoginAttempt(c, email);
  const user = await findUserByEmail(c.env.DB, email);
  const t = now();
  const ok = user !== null && (await redeemEmailCode(c.env.DB, { email: user.email, codeHash: await codeHash(user.email, code), now: t, maxAttempts: CODE_MAX_ATTEMPTS }));
  if (!user || !ok) {
    await recordEvent(c, { event: 'login', outcome: 'failure', userId: user?.id ?? null, detail: { method: 'email_code', reason: user ? 'wrong_code' : 'unknown_email' } });
    await recordLoginFailure(c, attempt, user?.id ?? null);
    throw new ApiError('invalid_credentials', 'The code is wrong, has expired or was already used. Request a new one if needed.');
  }
  if (user.disabledAt !== null) {
    await recordEvent(c, { event: 'login', outcome: 'failure', userId: user.id, detail: { method: 'email_code', reason: 'disabled' } });
    throw new ApiError('forbidden', 'This account is disabled.');
  }
  await recordLoginSuccess(c, email);
  if (!user.emailVerified) {
    const proved = await proveMailbox(c, user, { email: user.email, via: { method: 'email_code' }, password: { kind: 'remove' } });
    // Deleted in the meantime: as if the address had no account.
    if (!proved.user) throw new ApiError('invalid_credentials', 'The code is wrong, has expired or was already used. Request a new one if needed.');
    return proved.user;
  }
  return user;
}
