/**
 * Cheap questions about a user's second factors (an authenticator app, passkeys), for the
 * sign-in paths (no otpauth or WebAuthn library here: auth/second-factor.ts and the library
 * behind auth/passkeys.ts are loaded only where a factor is checked or set up).
 */
import type { Config } from '../config/schema';
import { totpSecretKey } from '../crypto/second-factor-key';
import { countPasskeys } from '../storage/passkeys';
import { findTotpFactor } from '../storage/second-factors';
import type { User } from '../storage/users';
import { passkeysAvailable } from './passkeys';
import { effectiveRoles } from './roles';

/** The window of the per-account wrong-code limit (`MFA_ATTEMPT_LIMIT` per window). */
export const ATTEMPT_WINDOW_SECONDS = 900;

/** The user's second factors: a confirmed authenticator app, and passkeys (when this gateway offers them). */
export interface SecondFactors {
  totp: boolean;
  passkeys: number;
}

export async function secondFactors(db: D1Database, userId: string, config: Pick<Config, 'PASSKEYS' | 'PUBLIC_URL'>): Promise<SecondFactors> {
  const [factor, passkeys] = await Promise.all([findTotpFactor(db, userId), passkeysAvailable(config) ? countPasskeys(db, userId) : 0]);
  return { totp: factor !== null && factor.confirmedAt !== null, passkeys };
}

/**
 * True if the user has a second factor: a confirmed authenticator app or a passkey. A passkey
 * counts only while passkeys are offered (`PASSKEYS`): otherwise it could not be given, and a
 * passkey-only user would be locked out at the pending state.
 */
export async function hasSecondFactor(db: D1Database, userId: string, config: Pick<Config, 'PASSKEYS' | 'PUBLIC_URL'>): Promise<boolean> {
  const f = await secondFactors(db, userId, config);
  return f.totp || f.passkeys > 0;
}

/** True if authenticator apps can be offered: a key for their secrets exists (TOKEN_ENCRYPTION_KEY, or development). */
export function totpAvailable(config: Config): boolean {
  return totpSecretKey(config) !== null;
}

/** True if one of the user's roles is in `MFA_REQUIRED_ROLES`. */
export function mfaRequiredByRole(user: User, config: Config): boolean {
  if (config.MFA_REQUIRED_ROLES.length === 0) return false;
  return effectiveRoles(user, config).some((r) => config.MFA_REQUIRED_ROLES.includes(r.toLowerCase()));
}

/** True if the roles (a token's) include one of `MFA_REQUIRED_ROLES`. */
export function rolesRequireMfa(roles: readonly string[], config: Config): boolean {
  return config.MFA_REQUIRED_ROLES.length > 0 && roles.some((r) => config.MFA_REQUIRED_ROLES.includes(r.toLowerCase()));
}
