/**
 * Decides who a request to a route is, and whether it may pass: the route's `auth` mode, the
 * presented token (bearer or cookie, fully verified including revocation), cross-site checks
 * for cookie-authenticated unsafe methods and WebSocket handshakes, and the `allow` list.
 * Shared by the proxy and by forward-auth (`/auth/verify`).
 */
import type { Context } from 'hono';
import type { AppEnv, AuthUser } from '../env';
import { wantsHtml } from '../http/client';
import { ApiError, insufficientUserAuthentication, invalidToken } from '../http/errors';
import { authenticate, presentedToken } from '../auth/authenticate';
import { crossSiteRefused, isSafeMethod, requestSite } from '../auth/cross-site';
import type { CompiledRoute } from './route-table';
import { isAllowed } from './policy';
import { stepUpNeed } from './step-up';
import { nowSeconds } from '../util/time';

/** Headers by which many frameworks let a POST (or even a GET) act as another method. */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/**
 * True if the request may change something at the origin: an unsafe method, a method-override
 * header naming one (an origin that honours it would treat a cross-site GET as a DELETE), or a
 * WebSocket handshake, which is a GET but what follows it is not read-only (cross-site
 * WebSocket hijacking).
 */
function mayWrite(c: Context<AppEnv>, method: string): boolean {
  if (!isSafeMethod(method)) return true;
  const overridden = METHOD_OVERRIDES.some((name) => {
    const value = c.req.header(name);
    return value !== undefined && !isSafeMethod(value.trim());
  });
  if (overridden) return true;
  return (c.req.header('upgrade') ?? '').toLowerCase() === 'websocket';
}

export type GateResult =
  | { pass: true; user: AuthUser | null; via: 'cookie' | 'bearer' | null }
  | { pass: false; redirect: string; status?: 302 | 303 };

export interface GateOptions {
  /** The URL to come back to after signing in; browser navigations are redirected when set. */
  returnTo?: string;
  /** Refuse cookie-authenticated unsafe methods from another site (proxied requests). */
  refuseCrossSite?: boolean;
  /** The method of the request being authorised, when it is not this one (forward-auth). */
  method?: string;
  /** Origins besides `PUBLIC_URL` that the request may come from (forward-auth: the app's own). */
  trustedOrigins?: readonly string[];
  /**
   * An app host (README "Hosts"): where a browser navigation goes instead of this host's sign-in
   * and refresh (the gateway's `/sso`) and step-up (the gateway's, then `/sso` again). Absolute URLs.
   */
  viaGateway?: { signIn: string; stepUp: string };
}

export async function gate(c: Context<AppEnv>, route: CompiledRoute, options: GateOptions = {}): Promise<GateResult> {
  const mode = route.config.auth;
  if (mode === 'public') return { pass: true, user: null, via: null };
  const config = c.get('config');
  const navigation = options.returnTo !== undefined && wantsHtml(c);
  const to = (endpoint: 'login' | 'refresh') =>
    options.viaGateway?.signIn ?? `${config.AUTH_PREFIX}/${endpoint}?return_to=${encodeURIComponent(options.returnTo ?? '/')}`;

  const presented = presentedToken(c);
  if (!presented) {
    if (mode === 'optional') return { pass: true, user: null, via: null };
    if (navigation) return { pass: false, redirect: to('login') };
    throw invalidToken('Sign in first: no access token was sent.');
  }
  if (options.refuseCrossSite && presented.via === 'cookie' && mayWrite(c, options.method ?? c.req.method)) {
    // Only a proven same-origin request passes: one that names no site is refused too.
    const site = requestSite(c, [config.PUBLIC_URL, ...(options.trustedOrigins ?? [])]);
    if (site !== 'same-origin') throw crossSiteRefused(site);
  }
  let user: AuthUser;
  try {
    user = await authenticate(c, presented.token, route.config.revocation === 'immediate');
  } catch (e) {
    // A stale session cookie (expired, revoked) is not an attack: a browser is sent to refresh
    // it (the refresh cookie is scoped to the auth prefix, so only an /auth endpoint can), and an
    // optional route simply treats it as anonymous. A bad bearer token is always refused.
    const stale = e instanceof ApiError && e.code === 'invalid_token' && presented.via === 'cookie';
    if (!stale) throw e;
    if (mode === 'optional') return { pass: true, user: null, via: null };
    if (navigation) return { pass: false, redirect: to('refresh') };
    throw e;
  }
  c.set('user', user);
  c.set('authVia', presented.via);
  if (!isAllowed(route.config.allow, user)) throw new ApiError('forbidden', 'Your account is not allowed on this route.');
  const need = stepUpNeed(route.config, user, nowSeconds());
  if (need) {
    const stepUp = `${config.AUTH_PREFIX}/step-up${options.returnTo === undefined ? '' : `?return_to=${encodeURIComponent(options.returnTo)}`}`;
    // A browser is sent to sign in again more strongly and comes back; an API client is told what would do.
    if (navigation) return { pass: false, redirect: options.viaGateway?.stepUp ?? stepUp, status: 303 };
    throw insufficientUserAuthentication(need, `${config.PUBLIC_URL}${stepUp}`);
  }
  return { pass: true, user, via: presented.via };
}
