/**
 * Linked sign-in methods on the account page:
 *
 * - `POST /account/identities/link/:provider`  start an OAuth flow that links `provider` to the
 *   signed-in user (the flow cookie names the user; routes/oauth.ts hands the callback to
 *   {@link finishIdentityLink}, which links instead of signing in). A form gets a page with the link to
 *   the provider (ui/self-service-pages.tsx says why not a redirect); JSON gets `authorization_url`.
 * - `POST /account/identities/unlink`          unlink one (`provider`, `subject`) while another way to sign in remains
 *
 * Both change how the account can be reached, so both need a recent sign-in (`RECENT_AUTH_SECONDS`:
 * a browser is sent to step up, an API client gets RFC 9470's 401) and both mail the owner a
 * notice: a stolen session token an hour old must not add its holder's identity as a way in.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { authenticate, liveSessionUser, presentedToken } from '../auth/authenticate';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { ApiError, toApiError } from '../http/errors';
import { sendAccountNotice } from '../mail/delivery';
import { requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { findProvider } from '../providers/registry';
import { providerContext, startAuthorization } from '../providers/sign-in';
import { ProviderError, type Provider, type ProviderProfile } from '../providers/types';
import { setFlowCookie } from '../tokens/oauth-flow-cookie';
import { findUserById } from '../storage/users';
import { renderPage, type PageStatus } from '../ui/render';
import { needsRecentSignIn } from '../middleware/require-auth';
import { backToAccount } from './account-overview';

const unlinkSchema = v.strictObject(
  { provider: v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long')), subject: v.pipe(v.string('must be a string'), v.maxLength(512, 'is too long')) },
  'is not a known field',
);

/** The pages are loaded on first use: only these rare requests need them. */
const pages = () => import('../ui/self-service-pages');

async function failurePage(c: Context<AppEnv>, title: string, status: PageStatus, message: string): Promise<Response> {
  const prefix = c.get('config').AUTH_PREFIX;
  const { AccountResultPage } = await pages();
  return renderPage(c, (nonce, brand) => AccountResultPage({ nonce, brand, prefix, title, error: message, next: { href: `${prefix}/account`, label: 'Back to your account' } }), status);
}

const identityLinkFailedPage = (c: Context<AppEnv>, status: PageStatus, message: string) => failurePage(c, 'The sign-in method was not linked', status, message);

/**
 * The callback of a link flow: the browser must still be signed in as the user who started it
 * (a flow cookie alone never links anything to an account), then the identity is added to
 * that account, or refused if it belongs to another. A new link is told to the owner.
 */
export async function finishIdentityLink(c: Context<AppEnv>, provider: Provider, userId: string, profile: ProviderProfile, sealed: string | null): Promise<Response> {
  const presented = presentedToken(c);
  const who = presented ? await authenticate(c, presented.token).catch(() => null) : null;
  const live = who && who.id === userId ? await liveSessionUser(c, who).catch(() => null) : null;
  if (!live) return identityLinkFailedPage(c, 403, 'Your session has ended or changed since the link was started. Sign in and start again from your account page.');
  try {
    const { linkIdentityToUser } = await import('../auth/linked-identities');
    if (await linkIdentityToUser(c, userId, provider.id, profile, sealed)) {
      const owner = await findUserById(c.env.DB, userId);
      if (owner) sendAccountNotice(c, owner, 'identity_linked', provider.name);
    }
  } catch (e) {
    const err = toApiError(e);
    if (err.status < 500) return identityLinkFailedPage(c, err.status, err.description);
    throw e;
  }
  return backToAccount(c, 'identity_linked');
}

export const linkedIdentityRoutes = new Hono<AppEnv>()
  .post('/account/identities/link/:provider', sameOrigin({ always: true }), requireAuth(), async (c) => {
    const { kind } = await readBody(c, v.strictObject({}, 'is not a known field'));
    const config = c.get('config');
    const stepUp = needsRecentSignIn(c, c.get('user'), `${config.AUTH_PREFIX}/account`);
    if (stepUp) return stepUp;
    const provider = findProvider(config, c.req.param('provider'));
    if (!provider) throw new ApiError('not_found', 'This sign-in provider is not configured on this gateway.');
    let start;
    try {
      start = await startAuthorization(provider, providerContext(config, provider));
    } catch (e) {
      if (e instanceof ProviderError) return identityLinkFailedPage(c, e.kind === 'refused' ? 400 : 503, `${provider.name} cannot be reached right now. Try again in a moment.`);
      throw e;
    }
    const returnTo = `${config.AUTH_PREFIX}/account`;
    await setFlowCookie(c, { provider: provider.id, state: start.state, codeVerifier: start.codeVerifier, nonce: start.nonce, returnTo, linkUserId: c.get('user').id });
    if (kind === 'json') return c.json({ authorization_url: start.url.toString() });
    const { ContinueToProviderPage } = await pages();
    return renderPage(c, (nonce, brand) => ContinueToProviderPage({ nonce, brand, prefix: config.AUTH_PREFIX, provider, url: start.url.toString() }));
  })
  .post('/account/identities/unlink', sameOrigin({ always: true }), requireAuth(), async (c) => {
    const { kind, data } = await readBody(c, unlinkSchema);
    const stepUp = needsRecentSignIn(c, c.get('user'), `${c.get('config').AUTH_PREFIX}/account`);
    if (stepUp) return stepUp;
    try {
      const { unlinkIdentity } = await import('../auth/account-changes');
      await unlinkIdentity(c, c.get('user'), data);
    } catch (e) {
      const err = toApiError(e);
      if (kind !== 'form' || err.status >= 500) throw e;
      return failurePage(c, 'The sign-in method was not unlinked', err.status, err.description);
    }
    if (kind === 'json') return c.json({ ok: true });
    return backToAccount(c, 'identity_unlinked');
  });
