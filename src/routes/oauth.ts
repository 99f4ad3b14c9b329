/**
 * Provider sign-in: `GET /auth/login/:provider` starts it, `GET /auth/callback/:provider`
 * finishes it (docs/design.md). Every refusal is a plain HTML page and starts no session.
 */
import { Hono, type Context } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import { recordEvent } from '../auth/events';
import { resolveProviderAccount } from '../auth/provider-account';
import { groupsAtSignIn } from '../auth/provider-groups';
import { sealForStorage } from '../auth/oauth-provider-tokens';
import { signIn } from '../auth/sign-in';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { log } from '../observability/log';
import { findProvider } from '../providers/registry';
import { completeAuthorization, providerContext, startAuthorization } from '../providers/sign-in';
import { ProviderError, type Provider } from '../providers/types';
import { consumeState, firstReplayOf } from '../storage/oauth-states';
import { clearFlowCookie, readFlowCookie, setFlowCookie } from '../tokens/oauth-flow-cookie';
import { OAuthErrorPage } from '../ui/oauth-error-page';
import { renderPage, type PageStatus } from '../ui/render';
import { nowSeconds as now } from '../util/time';
import { finishIdentityLink } from './linked-identities';
import { signInReply } from './sign-in-reply';

/** `returnTo` (already checked) is carried back to the sign-in page so a retry ends up there too. */
function errorPage(c: Context<AppEnv>, status: PageStatus, message: string, returnTo = '/'): Response {
  const prefix = c.get('config').AUTH_PREFIX;
  const title = status >= 500 ? 'The sign-in provider is not answering' : 'Sign-in failed';
  const loginHref = returnTo === '/' ? `${prefix}/login` : `${prefix}/login?return_to=${encodeURIComponent(returnTo)}`;
  return renderPage(c, (nonce, brand) => OAuthErrorPage({ nonce, brand, title, message, loginHref }), status);
}

const PROVIDER_STATUS = { refused: 400, bad_response: 502, unavailable: 503 } as const;

function providerFault(c: Context<AppEnv>, provider: Provider, e: ProviderError, returnTo?: string): Response {
  log.warn('oauth_provider_error', { provider: provider.id, kind: e.kind, message: e.message, detail: e.detail });
  const status = PROVIDER_STATUS[e.kind];
  if (status === 503) c.header('retry-after', '5');
  const message = e.kind === 'refused' ? `${provider.name} did not confirm the sign-in: ${e.message} Please start again.` : `${e.message} Please try again in a moment.`;
  return errorPage(c, status, message, returnTo);
}

function lookup(c: Context<AppEnv>): Provider | Response {
  const provider = findProvider(c.get('config'), c.req.param('provider') ?? '');
  return provider ?? errorPage(c, 404, 'This sign-in provider is not configured on this gateway.');
}

/** Only a short, plain OAuth error code from the provider is worth repeating to the user. */
const shownCode = (code: string) => (/^[a-z_]{1,64}$/.test(code) ? ` (${code})` : '');

export const oauthRoutes = new Hono<AppEnv>()
  .get('/login/:provider', async (c) => {
    const provider = lookup(c);
    if (provider instanceof Response) return provider;
    const returnTo = safeReturnTo(c.req.query('return_to'), c.get('config'));
    let start;
    try {
      start = await startAuthorization(provider, providerContext(c.get('config'), provider));
    } catch (e) {
      if (e instanceof ProviderError) return providerFault(c, provider, e, returnTo);
      throw e;
    }
    await setFlowCookie(c, { provider: provider.id, state: start.state, codeVerifier: start.codeVerifier, nonce: start.nonce, returnTo });
    c.header('cache-control', 'no-store');
    return c.redirect(start.url, 302);
  })
  .get('/callback/:provider', async (c) => {
    const provider = lookup(c);
    if (provider instanceof Response) return provider;
    const config = c.get('config');
    const flow = await readFlowCookie(c);
    // The cookie is spent whatever happens next: a flow is never resumed.
    clearFlowCookie(c);
    const fail = async (status: PageStatus, reason: string, message: string, outcome: 'failure' | 'security' = 'failure') => {
      await recordEvent(c, { event: 'oauth_login', outcome, detail: { provider: provider.id, reason } });
      return errorPage(c, status, message, safeReturnTo(flow?.returnTo, config));
    };

    const providerError = c.req.query('error');
    if (providerError !== undefined) {
      return fail(400, 'provider_error', `${provider.name} did not complete the sign-in${shownCode(providerError)}. You can start again.`);
    }
    if (!flow) return fail(400, 'no_flow', 'This sign-in has expired or was already used. Please start again.');
    // A mismatch is a failure, not a security event: anyone holding one flow cookie can repeat
    // it with made-up states at will, and each alert would reach the webhook (an alert flood).
    if (flow.provider !== provider.id) {
      return fail(400, 'provider_mismatch', 'This sign-in was started for a different provider. Please start again.');
    }
    const state = c.req.query('state');
    if (!state || state.length > 512 || !(await timingSafeEqual(state, flow.state))) {
      return fail(400, 'state_mismatch', 'The sign-in response does not match the sign-in that was started here. Please start again.');
    }
    if (!(await consumeState(c.env.DB, flow.state, provider.id, flow.expiresAt, now()))) {
      // A copied cookie with its own, already used state: worth one alert per flow, not one per replay.
      const first = await firstReplayOf(c.env.DB, flow.state, provider.id, flow.expiresAt);
      return fail(400, 'state_replayed', 'This sign-in response was already used. Please start again.', first ? 'security' : 'failure');
    }
    const code = c.req.query('code');
    if (!code || code.length > 4096) return fail(400, 'no_code', `${provider.name} sent no authorization code. Please start again.`);

    let result;
    try {
      result = await completeAuthorization(provider, providerContext(c.get('config'), provider), {
        code,
        codeVerifier: flow.codeVerifier,
        nonce: flow.nonce,
        iss: c.req.query('iss'),
      });
    } catch (e) {
      if (!(e instanceof ProviderError)) throw e;
      await recordEvent(c, { event: 'oauth_login', outcome: 'failure', detail: { provider: provider.id, reason: `provider_${e.kind}`, code: e.code, detail: e.detail } });
      return providerFault(c, provider, e, safeReturnTo(flow.returnTo, config));
    }
    const { profile, tokens } = result;
    const sealed = await sealForStorage(c, { provider: provider.id, subject: profile.subject }, tokens);
    if (flow.linkUserId) {
      // Linking an identity from the account page: the callback adds it to that account instead of signing in.
      return finishIdentityLink(c, provider, flow.linkUserId, profile, sealed);
    }
    let account;
    try {
      account = await resolveProviderAccount(c, provider.id, profile, sealed);
    } catch (e) {
      if (e instanceof ApiError && e.status < 500) return errorPage(c, e.status, e.description, safeReturnTo(flow.returnTo, config));
      throw e;
    }
    const returnTo = safeReturnTo(flow.returnTo, config);
    const groups = await groupsAtSignIn(c, provider, profile, tokens);
    const outcome = await signIn(c, { user: account.user, amr: [provider.id], provider: provider.id, mode: 'form', returnTo, groups, providerSid: profile.sessionId, providerSubject: profile.subject, detail: { via: 'oauth', how: account.how } });
    return signInReply(c, outcome);
  });
