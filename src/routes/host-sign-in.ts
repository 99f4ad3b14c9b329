/**
 * Single sign-on across hosts without a shared cookie (README "Hosts"; docs/design.md,
 * "Hosts and single sign-on"). The gateway host (PUBLIC_URL's) keeps the session; an app host
 * (one a route's `host` names) gets an access cookie of its own for the same session:
 *
 * - `GET /sso?return_to=<app URL>&state=…` on the gateway host: a browser signed in here (its
 *   access cookie) is sent back to the app host with a one-time code, bound to the `state` the
 *   app host gave this browser in its `__Host-gatehouse-sso` cookie; one whose cookie is stale goes
 *   through the refresh navigation first, one not signed in through the sign-in page, both
 *   coming back here. A `return_to` on a host the routes do not serve gets no code.
 * - `GET /sso/callback?code=…` on the app host: exchanges the code (auth/sign-in.ts
 *   `signInOnHost`, with this host's state cookie) for an access token of the same session bound to this host, sets this
 *   host's `__Host-` cookie and 303s to the page the code was minted for.
 * - `POST /logout` on the app host: ends the session of this host's cookie (so on every host),
 *   clears the cookie and 303s to the gateway's sign-in page, which says so.
 *
 * Every other gateway endpoint is the gateway host's alone: on an app host it answers 404.
 * All of these are top-level navigations or same-origin form posts; anything else is refused.
 */
import { Hono, type Context } from 'hono';
import { authenticate } from '../auth/authenticate';
import { isTopLevelNavigation, requestSite } from '../auth/cross-site';
import { recordEvent } from '../auth/events';
import { signOutWithAccessToken } from '../auth/sessions';
import { handOffToHost, signInOnHost } from '../auth/sign-in';
import type { AppEnv } from '../env';
import { wantsHtml } from '../http/client';
import { clearSessionCookies, readAccessCookie, readSsoStateCookie, setAccessCookie, SSO_STATE } from '../http/cookies';
import { ApiError } from '../http/errors';
import { hostReturnTo, onHost } from '../http/return-to';
import { queryValue } from '../http/query-value';
import { isAppHost } from '../proxy/route-table';
import { OAuthErrorPage } from '../ui/oauth-error-page';
import { renderPage, type PageStatus } from '../ui/render';

/** The error as a page for a browser (with a way on to the gateway's sign-in), else as JSON. */
function refusal(c: Context<AppEnv>, error: ApiError, title: string): Response {
  c.header('cache-control', 'no-store');
  if (!wantsHtml(c)) throw error;
  const config = c.get('config');
  const loginHref = `${config.PUBLIC_URL}${config.AUTH_PREFIX}/login`;
  return renderPage(c, (nonce, brand) => OAuthErrorPage({ nonce, brand, title, message: error.description, loginHref }), error.status as PageStatus);
}

const NOT_A_NAVIGATION = 'Signing in to another site of this gateway happens only by opening its pages in the browser, not from an image, a frame or a script.';

/** The gateway host's end: a code for the app host, or on through refresh or sign-in and back. */
export const gatewaySsoRoute = new Hono<AppEnv>().get('/sso', async (c) => {
  if (!isTopLevelNavigation(c)) return refusal(c, new ApiError('forbidden', NOT_A_NAVIGATION), 'Not available this way');
  const config = c.get('config');
  c.header('cache-control', 'no-store');
  const target = hostReturnTo(c.req.query('return_to'), config, (host) => isAppHost(config, host));
  if (!target) {
    const error = new ApiError('invalid_request', 'return_to must be a page on a site this gateway serves (a host named in its routes).');
    return refusal(c, error, 'Not a site this gateway serves');
  }
  const state = c.req.query('state') ?? '';
  if (!SSO_STATE.test(state)) {
    const error = new ApiError('invalid_request', 'This sign-in must start from a page of the site you are going to.');
    return refusal(c, error, 'Start again from the site');
  }
  const here = `${config.AUTH_PREFIX}/sso?return_to=${queryValue(target.href)}&state=${state}`;
  const cookie = readAccessCookie(c);
  if (!cookie) return c.redirect(`${config.AUTH_PREFIX}/login?return_to=${encodeURIComponent(here)}`, 303);
  const refresh = `${config.AUTH_PREFIX}/refresh?return_to=${encodeURIComponent(here)}`;
  let auth;
  try {
    // The session's own object is asked (the fence): a code is a way in, so no cached "live".
    auth = await authenticate(c, cookie, true);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_token') return c.redirect(refresh, 303);
    throw e;
  }
  const code = await handOffToHost(c, auth, { origin: target.origin, returnPath: target.path, state });
  if (code === null) return c.redirect(refresh, 303);
  return c.redirect(`${target.origin}${config.AUTH_PREFIX}/sso/callback?code=${encodeURIComponent(code)}`, 303);
});

/** The app host's end: the code's exchange, sign-out, and 404 for every other gateway path. */
export const appHostRoutes = new Hono<AppEnv>()
  .get('/sso/callback', async (c) => {
    if (!isTopLevelNavigation(c)) return refusal(c, new ApiError('forbidden', NOT_A_NAVIGATION), 'Not available this way');
    c.header('cache-control', 'no-store');
    const state = readSsoStateCookie(c) ?? '';
    let signedIn;
    try {
      signedIn = await signInOnHost(c, c.req.query('code') ?? '', new URL(c.req.url).origin, state);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'invalid_token') return refusal(c, e, 'This sign-in link cannot be used');
      throw e;
    }
    setAccessCookie(c, signedIn.accessToken, signedIn.cookieMaxAge);
    return c.redirect(onHost(signedIn.returnPath), 303);
  })
  .post('/logout', async (c) => {
    // A form post from a page of this very host, nothing else: cross-site, or saying nothing, is refused.
    const origin = new URL(c.req.url).origin;
    if (requestSite(c, [origin]) !== 'same-origin') throw new ApiError('forbidden', 'Cross-site request refused.');
    const config = c.get('config');
    const cookie = readAccessCookie(c);
    clearSessionCookies(c);
    c.header('cache-control', 'no-store');
    // This host has only an access cookie: it names the session, which ends on every host.
    const result = await signOutWithAccessToken(c, cookie);
    if (result.sessionId !== null) {
      await recordEvent(c, { event: 'logout', outcome: 'success', userId: result.userId, detail: { sid: result.sessionId, ended: result.ended, host: origin } });
    }
    return c.redirect(`${config.PUBLIC_URL}${config.AUTH_PREFIX}/login?done=signed_out`, 303);
  })
  .all('*', (c) => refusal(c, new ApiError('not_found', 'This page is on the sign-in site, not here.'), 'Page not found'));
