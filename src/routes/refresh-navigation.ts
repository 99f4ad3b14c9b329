/**
 * `GET /auth/refresh?return_to=…`: refreshes a browser session during a navigation.
 *
 * The refresh cookie is scoped to the auth prefix (`Path=/auth`), so when a proxied page finds
 * the access cookie expired it cannot refresh in place: it redirects here, this endpoint
 * rotates the refresh token, sets new cookies and 303s back; without a usable refresh token it
 * 303s to the sign-in page with the same `return_to` (so too without the access cookie of the
 * same session beside it: auth/sessions.ts `refreshBrowserSession`). A refresh cookie another
 * tab rotated a moment ago (REFRESH_REUSE_GRACE_S) just 303s back. It is a GET because it is reached by a
 * top-level navigation, and only that may use it: a request whose fetch metadata says it is
 * anything else (an image, a frame, a script's fetch; `SameSite=Lax` does not keep the cookies
 * off a same-site one) gets 403 and changes nothing, so no page can make a browser rotate or
 * clear its session behind the user's back. A request without fetch metadata is let through
 * (older browsers send none).
 */
import { Hono, type Context } from 'hono';
import { isTopLevelNavigation } from '../auth/cross-site';
import { refreshBrowserSession } from '../auth/sessions';
import type { AppEnv } from '../env';
import { wantsHtml } from '../http/client';
import { clearSessionCookies, readRefreshCookie, setSessionCookies } from '../http/cookies';
import { ApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { OAuthErrorPage } from '../ui/oauth-error-page';
import { renderPage } from '../ui/render';
import { nowSeconds } from '../util/time';

const NOT_A_NAVIGATION = 'The session is refreshed here only by opening this address in the browser, not from an image, a frame or a script.';

/** 403 `forbidden` (a plain page for a browser that asks for HTML): nothing read, nothing set. */
function notANavigation(c: Context<AppEnv>): Response {
  c.header('cache-control', 'no-store');
  if (!wantsHtml(c)) throw new ApiError('forbidden', NOT_A_NAVIGATION);
  const loginHref = `${c.get('config').AUTH_PREFIX}/login`;
  return renderPage(c, (nonce, brand) => OAuthErrorPage({ nonce, brand, title: 'Not available this way', message: NOT_A_NAVIGATION, loginHref }), 403);
}

export const refreshNavigationRoute = new Hono<AppEnv>().get('/refresh', async (c) => {
  if (!isTopLevelNavigation(c)) return notANavigation(c);
  const config = c.get('config');
  const returnTo = safeReturnTo(c.req.query('return_to'), config);
  const signIn = `${config.AUTH_PREFIX}/login?return_to=${encodeURIComponent(returnTo)}`;
  c.header('cache-control', 'no-store');
  const token = readRefreshCookie(c);
  if (!token) return c.redirect(signIn, 303);
  try {
    // Only beside this browser's own access cookie (a sibling host can plant a refresh cookie).
    const { tokens } = await refreshBrowserSession(c, token);
    setSessionCookies(c, tokens.accessToken, tokens.refreshToken, tokens.sessionExpiresAt - nowSeconds());
  } catch (e) {
    // Another tab refreshed with this cookie a moment ago, and its response set the new
    // cookies: go back with those, leaving the cookies alone.
    if (e instanceof ApiError && e.code === 'conflict') return c.redirect(returnTo, 303);
    if (!(e instanceof ApiError) || e.code !== 'invalid_token') throw e;
    clearSessionCookies(c);
    return c.redirect(signIn, 303);
  }
  return c.redirect(returnTo, 303);
});
