/**
 * Step-up per route (README "Second factors"): a route's `require` (`mfa`, `passkey`) and
 * `max_auth_age` against the verified token's `amr` and `auth_time`. Checked by the gate after
 * the token and the allow list, for the proxy and forward-auth alike. Cheap: no I/O.
 */
import type { RouteConfig } from '../config/routes-schema';
import type { AuthUser } from '../env';
import type { StepUpNeed } from '../http/errors';

/** RFC 8176 methods that prove a passkey (hardware- or software-held key). */
export const PASSKEY_AMR: readonly string[] = ['hwk', 'swk'];

/** What the user's token lacks for the route, or null if it meets the route's demands. */
export function stepUpNeed(route: RouteConfig, user: AuthUser, now: number): StepUpNeed | null {
  const missing = (route.require ?? []).filter((r) => (r === 'mfa' ? !user.amr.includes('mfa') : !user.amr.some((m) => PASSKEY_AMR.includes(m))));
  const tooOld = route.max_auth_age !== undefined && now - user.authTime > route.max_auth_age;
  if (missing.length === 0 && !tooOld) return null;
  return tooOld ? { missing, maxAge: route.max_auth_age } : { missing };
}
