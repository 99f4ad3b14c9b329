/**
 * The account page and its form actions, for browsers (cookie mode):
 *
 * - `GET  /account`                     the page (ui/account-page.tsx)
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
import { effectiveRoles } from '../auth/roles';
import { mfaRequiredByRole } from '../auth/second-factor-status';
import { endAllSessions, endSession } from '../auth/sessions';
import type { AppEnv } from '../env';
import { wantsHtml } from '../http/client';
import { clearSessionCookies, readRefreshCookie } from '../http/cookies';
import { safeReturnTo } from '../http/return-to';
import { ApiError, invalidToken } from '../http/errors';
import { requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { enabledProviders } from '../providers/registry';
import { AccountPage } from '../ui/account-page';
import { accountSecurityView, SECURITY_NOTICES } from './account-security';
import { renderPage } from '../ui/render';
import { SECOND_FACTOR_NOTICES, secondFactorsCard } from './second-factors-card';
import { listUserIdentities } from '../storage/identities';
import { listActiveSessions } from '../storage/sessions';
import { findUserById } from '../storage/users';
import { deviceLabel } from '../ui/device-label';
import { nowSeconds as now } from '../util/time';
import { passkeysAvailable } from '../auth/passkeys';
import { PASSKEY_NOTICES, passkeysSectionProps } from './passkeys';

const NOTICES: Record<string, string> = {
  session_ended: 'That session has been signed out.',
  ...PASSKEY_NOTICES,
  ...SECOND_FACTOR_NOTICES,
};

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
    const auth = c.get('user');
    const t = now();
    const [user, sessions, identities, secondFactors] = await Promise.all([
      findUserById(c.env.DB, auth.id),
      listActiveSessions(c.env.DB, auth.id, t),
      listUserIdentities(c.env.DB, auth.id),
      secondFactorsCard(c, auth.id),
    ]);
    const current = sessions.find((s) => s.id === auth.sessionId);
    if (!user || user.disabledAt !== null || !current) {
      if (wantsHtml(c)) return signInRedirect(c);
      throw invalidToken('The session has ended.');
    }
    const config = c.get('config');
    const providerNames = new Map(enabledProviders(config).map((p) => [p.id, p.name]));
    // Own keys only: `?done=constructor` must not find Object.prototype's.
    const done = c.req.query('done') ?? '';
    const notice = (Object.hasOwn(NOTICES, done) ? NOTICES[done] : Object.hasOwn(SECURITY_NOTICES, done) ? SECURITY_NOTICES[done] : null) ?? null;
    const passkeys = passkeysAvailable(config) ? await passkeysSectionProps(c, user.id, auth.authTime) : undefined;
    return renderPage(c, (nonce, brand) =>
      AccountPage({
        nonce,
        brand,
        backHref: safeReturnTo(c.req.query('return_to'), config),
        prefix: config.AUTH_PREFIX,
        notice,
        security: accountSecurityView(c, user, identities),
        user: {
          email: user.email,
          emailVerified: user.emailVerified,
          name: user.name,
          roles: effectiveRoles(user, config),
          createdAt: user.createdAt,
          hasPassword: user.passwordHash !== null,
        },
        secondFactors: { ...secondFactors, required: mfaRequiredByRole(user, config) },
        providers: identities.map((i) => ({ name: providerNames.get(i.provider) ?? i.provider, email: i.email, linkedAt: i.createdAt })),
        sessions: sessions.map((s) => ({
          id: s.id,
          device: deviceLabel(s.userAgent),
          ip: s.ip,
          createdAt: s.createdAt,
          lastUsedAt: s.lastUsedAt,
          current: s.id === auth.sessionId,
          provider: s.provider ? (providerNames.get(s.provider) ?? s.provider) : null,
        })),
        passkeys,
      }),
      200,
      { scripts: passkeys !== undefined },
    );
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
    return c.redirect(`${accountPath(c)}?done=session_ended`, 303);
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
