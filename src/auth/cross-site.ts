/**
 * Where a request comes from, and the cross-site refusal. Shared by the `sameOrigin()`
 * middleware (the gateway's own endpoints) and the proxy / forward-auth gate (routes).
 *
 * Hand-written rather than hono's `csrf()` because that helper only looks at form content
 * types; a cross-site `fetch` with `text/plain` or a JSON body must be refused too. It reads
 * Fetch Metadata (`Sec-Fetch-Site`) first and falls back to `Origin`. A cookie-authenticated
 * unsafe request with neither header is refused too (fail safe, as OWASP's CSRF cheat sheet
 * advises): every current browser sends `Origin` on a POST, so only something that is not a
 * browser omits both, and it can use a bearer token. Requests without gateway cookies (bearer
 * clients) are not affected unless `always` is set (used for form posts, to stop login CSRF);
 * for those a missing header is not held against them.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { hasSessionCookie } from '../http/cookies';
import { ApiError } from '../http/errors';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

/** Where the request says it comes from: our own origin, another site, or it does not say. */
export type RequestSite = 'same-origin' | 'cross-site' | 'unknown';

export function requestSite(c: Context<AppEnv>, trustedOrigins: readonly string[]): RequestSite {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin' || site === 'none' ? 'same-origin' : 'cross-site';
  const origin = c.req.header('origin');
  if (origin !== undefined) return trustedOrigins.includes(origin) ? 'same-origin' : 'cross-site';
  return 'unknown';
}

/**
 * Whether a request may be a top-level navigation: `Sec-Fetch-Mode: navigate` with
 * `Sec-Fetch-Dest: document`, from any site, or a request with no fetch metadata at all (a
 * browser too old to send it, or not a browser). An image, a script's fetch or a frame says
 * what it is, and is not one.
 */
export function isTopLevelNavigation(c: Context<AppEnv>): boolean {
  const mode = c.req.header('sec-fetch-mode');
  const dest = c.req.header('sec-fetch-dest');
  const sendsNone = mode === undefined && dest === undefined && c.req.header('sec-fetch-site') === undefined && c.req.header('sec-fetch-user') === undefined;
  return sendsNone || (mode === 'navigate' && dest === 'document');
}

/** The refusal for a request from another site, or one that does not say where it comes from. */
export function crossSiteRefused(site: RequestSite): ApiError {
  return new ApiError(
    'forbidden',
    site === 'unknown' ? 'Cross-site request refused: a request authenticated by cookie must send Origin or Sec-Fetch-Site.' : 'Cross-site request refused.',
  );
}

export interface CrossSiteOptions {
  /** Check even requests without gateway cookies (HTML form posts). */
  always?: boolean;
}

/** Throws `forbidden` for an unsafe request to the gateway's own endpoints that may be cross-site. */
export function refuseCrossSite(c: Context<AppEnv>, options: CrossSiteOptions = {}): void {
  if (isSafeMethod(c.req.method)) return;
  const contentType = c.req.header('content-type') ?? '';
  const isForm = /^(application\/x-www-form-urlencoded|multipart\/form-data|text\/plain)/i.test(contentType);
  // A request with an Authorization header authenticates by it, not by cookies, and a
  // cross-site page cannot add that header without a CORS preflight we never approve.
  const cookieAuthenticated = hasSessionCookie(c) && c.req.header('authorization') === undefined;
  const site = requestSite(c, [c.get('config').PUBLIC_URL]);
  if (site === 'cross-site' ? options.always || isForm || cookieAuthenticated : site === 'unknown' && cookieAuthenticated) {
    throw crossSiteRefused(site);
  }
}
