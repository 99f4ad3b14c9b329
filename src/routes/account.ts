/**
 * The account page and its form actions, for browsers (cookie mode):
 *
 * - `GET  /account`                     the page (its data: routes/account-overview.ts; drawn by ui/account-page.tsx)
 * - `POST /account/sessions/:id/end`    sign out one session (the form twin of `DELETE /sessions/:id`)
 * - `POST /account/logout-all`          sign out everywhere (the form twin of `POST /logout-all`)
 *
 * HTML forms cannot send DELETE, hence the POST twins; they end sessions through the same
 * `endSession` / `endAllSessions` as the JSON endpoints, and answer with a 303. A browser
 * without a valid session is sent to sign in (through `/refresh` if it still has a refresh
 * cookie) and comes back here; other clients get the usual 401 JSON.
 */
import { Hono, type Context } from 'hono';
import { recordEvent } from '../auth/events';
import { endAllSessions, endSession } from '../auth/sessions';
import type { AppEnv } from '../env';
import { wantsHtml } from '../http/client';
import { clearSessionCookies, readRefreshCookie } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { AccountPage } from '../ui/account-page';
import { renderPage } from '../ui/render';
import { backToAccount, loadAccountOverview } from './account-overview';

function accountPath(c: Context<AppEnv>): string {
  return `${c.get('config').AUTH_PREFIX}/account`;
}

/** Where a browser without a usable session goes: refresh if it can, else sign in; back here after. */
function signInRedirect(c: Context<AppEnv>): Response {
  const prefix = c.get('config').AUTH_PREFIX;
  const back = encodeURIComponent(accountPath(c));
  c.header('cache-control', 'no-store');
  return c.redirect(readRefreshCookie(c) ? `${prefix}/refresh?return_to=${back}` : `${prefix}/login?return_to=${back}`, 302);
}

/**
 * `requireAuth()`, except that a browser without a valid session is redirected to sign in
 * instead of getting a 401.
 */
const accountAuth = () => requireAuth({ onUnauthenticated: (c) => (wantsHtml(c) ? signInRedirect(c) : undefined) });

export const accountRoutes = new Hono<AppEnv>()
  .get('/account', accountAuth(), async (c) => {
    const overview = await loadAccountOverview(c, c.get('user'));
    if (!overview) {
      if (wantsHtml(c)) return signInRedirect(c);
      throw invalidToken('The session has ended.');
    }
    return renderPage(c, (nonce, brand) => AccountPage({ nonce, brand, ...overview }), 200, { scripts: overview.passkeys !== undefined });
  })
  .post('/account/sessions/:id/end', sameOrigin({ always: true }), accountAuth(), async (c) => {
    const auth = c.get('user');
    const id = c.req.param('id');
    const current = id === auth.sessionId;
    if (current) clearSessionCookies(c);
    // Another user's session id answers exactly like a missing one. A session that ended
    // moments ago is ended again (KV), so the retry of a post whose KV write failed completes.
    if (id.length > 64 || !(await endSession(c, id, auth.id))) throw new ApiError('not_found', 'No such session.');
    await recordEvent(c, { event: current ? 'logout' : 'session_revoked', outcome: 'success', userId: auth.id, detail: { sid: id, via: 'account_page' } });
    c.header('cache-control', 'no-store');
    if (current) return c.redirect(`${c.get('config').AUTH_PREFIX}/login?done=signed_out`, 303);
    return backToAccount(c, 'session_ended');
  })
  .post('/account/logout-all', sameOrigin({ always: true }), accountAuth(), async (c) => {
    const auth = c.get('user');
    clearSessionCookies(c);
    // Own session last in KV, so a retry after a failed KV write is still signed in (as POST /logout-all).
    const ended = await endAllSessions(c, auth.id, auth.sessionId);
    await recordEvent(c, { event: 'logout_all', outcome: 'success', userId: auth.id, detail: { sessions: ended.length, via: 'account_page' } });
    c.header('cache-control', 'no-store');
    return c.redirect(`${c.get('config').AUTH_PREFIX}/login?done=signed_out_everywhere`, 303);
  });
