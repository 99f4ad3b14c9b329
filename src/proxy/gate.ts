/**
 * Decides who a request to a route is, and whether it may pass: the route's `auth` mode, the
 * presented token (bearer or cookie, fully verified including revocation), cross-site checks
 * for cookie-authenticated unsafe methods and WebSocket handshakes, and the `allow` list.
 * Shared by the proxy and by forward-auth (`/auth/verify`).
 */
import type { Context } from 'hono';
import type { AppEnv, AuthUser } from '../env';
import { wantsHtml } from '../http/client';
import { ApiError, invalidToken } from '../http/errors';
import { authenticate, presentedToken } from '../middleware/require-auth';
import { isCrossSite } from '../middleware/same-origin';
import type { CompiledRoute } from './route-table';
import { isAllowed } from './policy';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type GateResult =
  | { pass: true; user: AuthUser | null; via: 'cookie' | 'bearer' | null }
  | { pass: false; redirect: string };

export interface GateOptions {
  /** The URL to come back to after signing in; browser navigations are redirected when set. */
  returnTo?: string;
  /** Refuse cookie-authenticated unsafe methods from another site (proxied requests). */
  refuseCrossSite?: boolean;
  /** The method of the request being authorised, when it is not this one (forward-auth). */
  method?: string;
  /** Origins besides `PUBLIC_URL` that the request may come from (forward-auth: the app's own). */
  trustedOrigins?: readonly string[];
}

export async function gate(c: Context<AppEnv>, route: CompiledRoute, options: GateOptions = {}): Promise<GateResult> {
  const mode = route.config.auth;
  if (mode === 'public') return { pass: true, user: null, via: null };
  const config = c.get('config');
  const navigation = options.returnTo !== undefined && wantsHtml(c);
  const to = (endpoint: 'login' | 'refresh') =>
    `${config.AUTH_PREFIX}/${endpoint}?return_to=${encodeURIComponent(options.returnTo ?? '/')}`;

  const presented = presentedToken(c);
  if (!presented) {
    if (mode === 'optional') return { pass: true, user: null, via: null };
    if (navigation) return { pass: false, redirect: to('login') };
    throw invalidToken('Sign in first: no access token was sent.');
  }
  if (
    options.refuseCrossSite &&
    presented.via === 'cookie' &&
    // A WebSocket handshake is a GET, but what follows it is not read-only: another site must
    // not open one with the user's cookie (cross-site WebSocket hijacking).
    (!SAFE_METHODS.has((options.method ?? c.req.method).toUpperCase()) || (c.req.header('upgrade') ?? '').toLowerCase() === 'websocket') &&
    isCrossSite(c, [config.PUBLIC_URL, ...(options.trustedOrigins ?? [])])
  ) {
    throw new ApiError('forbidden', 'Cross-site request refused.');
  }
  let user: AuthUser;
  try {
    user = await authenticate(c, presented.token);
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
  return { pass: true, user, via: presented.via };
}
