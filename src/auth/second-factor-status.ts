/**
 * Cheap questions about a user's second factors, for the sign-in paths (no otpauth here: that
 * is auth/second-factor.ts, loaded only where a code is checked or a factor set up).
 */
import type { Config } from '../config/schema';
import { totpSecretKey } from '../crypto/second-factor-key';
import { findTotpFactor } from '../storage/second-factors';
import type { User } from '../storage/users';
import { effectiveRoles } from './roles';

/** True if the user has a confirmed second factor (an authenticator app). */
export async function hasSecondFactor(db: D1Database, userId: string): Promise<boolean> {
  const factor = await findTotpFactor(db, userId);
  return factor !== null && factor.confirmedAt !== null;
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
