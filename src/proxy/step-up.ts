/**
 * Step-up per route (README "Second factors"): a route's `require` (`mfa`, `passkey`) and
 * `max_auth_age` against the verified token's `amr` and `auth_time`. Checked by the gate after
 * the token and the allow list, for the proxy and forward-auth alike. Cheap: no I/O.
 */
import type { RouteConfig } from '../config/routes-schema';
import type { AuthUser } from '../env';
import { ApiError } from '../http/errors';

/** RFC 8176 methods that prove a passkey (hardware- or software-held key). */
const PASSKEY_AMR = ['hwk', 'swk'];

export interface StepUpNeed {
  /** The `require` values the token does not meet (sent as `acr_values`). */
  missing: ('mfa' | 'passkey')[];
  /** Set when the sign-in is older than the route's `max_auth_age`. */
  maxAge?: number;
}

/** What the user's token lacks for the route, or null if it meets the route's demands. */
export function stepUpNeed(route: RouteConfig, user: AuthUser, now: number): StepUpNeed | null {
  const missing = (route.require ?? []).filter((r) => (r === 'mfa' ? !user.amr.includes('mfa') : !user.amr.some((m) => PASSKEY_AMR.includes(m))));
  const tooOld = route.max_auth_age !== undefined && now - user.authTime > route.max_auth_age;
  if (missing.length === 0 && !tooOld) return null;
  return tooOld ? { missing, maxAge: route.max_auth_age } : { missing };
}

/**
 * RFC 9470's refusal: 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`
 * naming what would do (`acr_values`: the missing `require` values, space-separated; `max_age`).
 * The JSON body repeats both.
 */
export function insufficientUserAuthentication(need: StepUpNeed, stepUpUrl: string): ApiError {
  const parts = [
    ...(need.missing.length ? [need.missing.includes('mfa') ? 'a second factor' : '', need.missing.includes('passkey') ? 'a passkey' : ''].filter(Boolean) : []),
    ...(need.maxAge !== undefined ? [`a sign-in within ${need.maxAge} seconds`] : []),
  ];
  const description = `This resource needs ${parts.join(' and ')}.`;
  const challenge = [
    'Bearer error="insufficient_user_authentication"',
    `error_description="${description}"`,
    ...(need.missing.length ? [`acr_values="${need.missing.join(' ')}"`] : []),
    ...(need.maxAge !== undefined ? [`max_age=${need.maxAge}`] : []),
  ].join(', ');
  return new ApiError('insufficient_user_authentication', description, {
    headers: { 'www-authenticate': challenge },
    fields: {
      ...(need.missing.length ? { acr_values: need.missing.join(' ') } : {}),
      ...(need.maxAge !== undefined ? { max_age: need.maxAge } : {}),
      step_up_url: stepUpUrl,
    },
  });
}
