/** The roles a user's tokens carry: stored roles, plus `admin` for a verified email in `ADMIN_EMAILS`. */
import type { Config } from '../config/schema';
import type { User } from '../storage/users';

export function effectiveRoles(user: User, config: Config): string[] {
  const roles = new Set(user.roles);
  if (user.emailVerified && config.ADMIN_EMAILS.includes(user.email.toLowerCase())) roles.add('admin');
  return [...roles].sort();
}

/** `ALLOWED_EMAIL_DOMAINS`: the part after the only `@` must equal an allowed domain exactly. */
export function emailDomainAllowed(email: string, config: Config): boolean {
  if (config.ALLOWED_EMAIL_DOMAINS.length === 0) return true;
  const parts = email.toLowerCase().split('@');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return false;
  return config.ALLOWED_EMAIL_DOMAINS.includes(parts[1]);
}
