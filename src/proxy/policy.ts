/**
 * A route's `allow` list: a signed-in user passes if any listed email, email domain, role or
 * provider group matches. Emails and domains count only when the email is verified, so that signing up with
 * someone else's unverified address cannot open a door.
 */
import type { RouteConfig } from '../config/routes-schema';
import type { AuthUser } from '../env';

export function isAllowed(allow: RouteConfig['allow'], user: AuthUser): boolean {
  if (!allow) return true;
  const email = user.email.toLowerCase();
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (user.emailVerified && allow.emails?.includes(email)) return true;
  if (user.emailVerified && allow.domains?.includes(domain)) return true;
  if (allow.roles?.some((r) => user.roles.includes(r))) return true;
  if (allow.groups?.some((g) => user.groups.includes(g))) return true;
  return false;
}
