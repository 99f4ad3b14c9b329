/**
 * The operators' console: server-rendered pages for administrators (README "Console",
 * docs/design.md "Console").
 *
 * - `GET {AUTH_PREFIX}/admin`                    the home: the areas, as navigation
 * - `{AUTH_PREFIX}/admin/console/<area>/...`     each area's pages (GET) and actions (POST)
 *
 * The JSON admin API keeps `{AUTH_PREFIX}/admin/users...` and its other paths (routes/admin.ts):
 * every console page is under `/admin/console/`, a path the API has not and will not use, so a
 * page and an API call never share a URL (no content negotiation, no `Vary: Accept`, and the
 * API's clients never meet a page or a redirect).
 *
 * Every console path, the home included, passes {@link consoleGuard} before anything of an area
 * runs: CSRF (`sameOrigin({ always: true })`), a live session (a browser without one signs in
 * and comes back), the JSON API's own `requireAdmin()` (the `admin` role as D1 holds it now),
 * and a session signed in with a passkey or a second factor (else the step-up page). Errors are
 * pages for browsers and the usual JSON for other clients.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { recordEvent } from '../auth/events';
import type { AppEnv, AuthUser } from '../env';
import { wantsHtml } from '../http/client';
import { ApiError, insufficientUserAuthentication, toApiError } from '../http/errors';
import { logUnhandled } from '../middleware/error-handler';
import { browserAuth, signInRedirect } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { PASSKEY_AMR } from '../proxy/step-up';
import { ConsoleErrorPage, ConsoleHome } from '../ui/console-pages';
import { renderPage, type PageStatus } from '../ui/render';
import { requireAdmin } from './admin';
import { consoleChrome, consoleHome, type ConsoleAreaId } from './console-kit';
import { consoleAppsRoutes } from './console-apps';
import { consoleAuditRoutes } from './console-audit';
import { consoleSessionsRoutes } from './console-sessions';
import { consoleUsersRoutes } from './console-users';
import { consoleRoutesRoutes } from './console-routes';
import { consoleHealthRoutes } from './console-health';

/** Each area's routes, mounted at `/admin/console/<id>`: an area listed in CONSOLE_AREAS without routes does not compile. */
const AREA_ROUTES: Record<ConsoleAreaId, Hono<AppEnv>> = {
  users: consoleUsersRoutes,
  sessions: consoleSessionsRoutes,
  audit: consoleAuditRoutes,
  apps: consoleAppsRoutes,
  routes: consoleRoutesRoutes,
  health: consoleHealthRoutes,
};

/** A sign-in strong enough for the console: a passkey, or a second factor. */
const strongSignIn = (user: Pick<AuthUser, 'amr'>) => user.amr.includes('mfa') || user.amr.some((m) => PASSKEY_AMR.includes(m));

/** Where a browser comes back to after signing in or stepping up: the page it asked for, or (after a post) the home. */
function backHere(c: Context<AppEnv>): string {
  if (c.req.method !== 'GET') return consoleHome(c);
  const url = new URL(c.req.url);
  return `${url.pathname}${url.search}`;
}

const TITLES: Partial<Record<PageStatus, string>> = {
  400: 'That request cannot be handled',
  403: 'Not allowed',
  404: 'Not found',
  409: 'That cannot be done',
  413: 'That request is too large',
  429: 'Too many requests',
};

/**
 * The console's answers to errors, for a browser: sign in (no session), step up (not strong
 * enough), or a page saying what went wrong. Everyone else gets the JSON error.
 */
const consoleErrors: MiddlewareHandler<AppEnv> = async (c, next) => {
  try {
    await next();
  } catch (e) {
    if (!wantsHtml(c)) throw e;
    const err = toApiError(e);
    // The page names nothing internal; the log still gets the fault, as the error handler's would.
    logUnhandled(c, e, err);
    if (err.code === 'invalid_token') return signInRedirect(c, backHere(c));
    if (err.code === 'insufficient_user_authentication') {
      c.header('cache-control', 'no-store');
      return c.redirect(`${c.get('config').AUTH_PREFIX}/step-up?return_to=${encodeURIComponent(backHere(c))}`, 303);
    }
    const prefix = c.get('config').AUTH_PREFIX;
    // Someone who is not an admin goes on to their account; an admin back to the console.
    const next = err.code === 'forbidden' ? { href: `${prefix}/account`, label: 'Go to your account' } : { href: consoleHome(c), label: 'Back to the console' };
    if (err.extra.retryAfter !== undefined) c.header('retry-after', String(err.extra.retryAfter));
    const title = TITLES[err.status] ?? 'Something went wrong';
    return renderPage(c, (nonce, brand) => ConsoleErrorPage({ nonce, brand, title, message: err.description, next }), err.status);
  }
};

/** After requireAdmin(): the session must have been signed in with a passkey or a second factor. */
const requireStrongSignIn: MiddlewareHandler<AppEnv> = async (c, next) => {
  const user = c.get('user');
  if (!strongSignIn(user)) {
    await recordEvent(c, { event: 'admin_denied', outcome: 'failure', userId: user.id, detail: { path: c.req.path.slice(0, 200), reason: 'no_second_factor' } });
    const config = c.get('config');
    throw insufficientUserAuthentication({ missing: ['mfa'] }, `${config.PUBLIC_URL}${config.AUTH_PREFIX}/step-up?return_to=${encodeURIComponent(backHere(c))}`);
  }
  await next();
};

/** Every check a console path passes, in order; errors from any of them are answered by consoleErrors. */
const consoleGuard: MiddlewareHandler<AppEnv>[] = [consoleErrors, sameOrigin({ always: true }), browserAuth(backHere), requireAdmin(), requireStrongSignIn];

/** An unknown path under the console, for a browser that passed the guard: a page, not the catch-all's. */
const noSuchPage = () => {
  throw new ApiError('not_found', 'There is no console page at this address.');
};

const consoleApp = new Hono<AppEnv>()
  .use('/', ...consoleGuard)
  .use('/console/*', ...consoleGuard)
  .get('/', (c) => renderPage(c, (nonce, brand) => ConsoleHome(consoleChrome(c, nonce, brand))));
for (const [id, routes] of Object.entries(AREA_ROUTES)) consoleApp.route(`/console/${id}`, routes);
consoleApp.get('/console/*', noSuchPage);

/** Mounted at `{AUTH_PREFIX}/admin` (app-lazy.ts), before the JSON admin API. */
export const consoleRoutes = consoleApp;
