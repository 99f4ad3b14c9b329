/**
 * `GET /auth/refresh?return_to=…`: refreshes a browser session during a navigation.
 *
 * The refresh cookie is scoped to the auth prefix (`Path=/auth`), so when a proxied page finds
 * the access cookie expired it cannot refresh in place: it redirects here, this endpoint
 * rotates the refresh token, sets new cookies and 303s back; without a usable refresh token it
 * 303s to the sign-in page with the same `return_to`. A refresh cookie another tab rotated a
 * moment ago (REFRESH_REUSE_GRACE_S) just 303s back. It is a GET because it is reached by a
 * top-level navigation; the cookies are `SameSite=Lax`, so another site can at most make a
 * victim's browser rotate its own tokens into its own cookies, learning nothing.
 */
import { Hono } from 'hono';
import { refreshSession } from '../auth/sessions';
import type { AppEnv } from '../env';
import { clearSessionCookies, readRefreshCookie, setSessionCookies } from '../http/cookies';
import { ApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { nowSeconds } from '../util/time';

export const refreshNavigationRoute = new Hono<AppEnv>().get('/refresh', async (c) => {
  const config = c.get('config');
  const returnTo = safeReturnTo(c.req.query('return_to'), config);
  const signIn = `${config.AUTH_PREFIX}/login?return_to=${encodeURIComponent(returnTo)}`;
  c.header('cache-control', 'no-store');
  const token = readRefreshCookie(c);
  if (!token) return c.redirect(signIn, 303);
  try {
    const { tokens } = await refreshSession(c, token);
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
