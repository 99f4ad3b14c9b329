/**
 * The authorization endpoint (README "Apps (OpenID Connect)"; docs/design.md "The
 * authorization endpoint and consent"):
 *
 * - `GET  /authorize`  the request (code flow, PKCE S256): a browser signed in here, whose
 *   sign-in is fresh and strong enough for the request and who consented (or whose app is
 *   first-party), goes back to the app with a code; otherwise on to sign in, step up or the
 *   consent page, and back here after.
 * - `POST /authorize`  the consent page's answer (same-origin form with a token bound to the
 *   session and the request): Allow remembers the consent and sends a code, Deny `access_denied`.
 *
 * Until the client and its redirect URI are checked, every error is a page of ours; after,
 * it goes back to the redirect URI (RFC 6749 §4.1.2.1, with `iss` per RFC 9207).
 */
import { Hono, type Context } from 'hono';
import { authenticate, sessionsOf } from '../auth/authenticate';
import { isMetadataDocumentUrl } from '../auth/client-id-metadata';
import { recordEvent } from '../auth/events';
import {
  authAfterTime,
  authAfterToken,
  authorizeReturnPath,
  AuthorizeError,
  AuthorizePageError,
  canonicalQuery,
  checkAuthorizationRequest,
  checkClientAndRedirect,
  consentFormToken,
  consentFormTokenValid,
  paramsOf,
  redirectWith,
  type AuthorizationRequest,
  type ClientAndRedirect,
  type RawParams,
} from '../auth/oauth-authorize';
import { issueAuthorizationCode } from '../auth/sign-in';
import type { AppEnv, AuthUser } from '../env';
import { readAccessCookie, readRefreshCookie } from '../http/cookies';
import { ApiError, toApiError } from '../http/errors';
import { sameOrigin } from '../middleware/same-origin';
import { log } from '../observability/log';
import { findConsent, storeConsent } from '../storage/sessions';
import { ConsentPage, ContinuePage } from '../ui/consent-page';
import { OAuthErrorPage } from '../ui/oauth-error-page';
import { renderPage } from '../ui/render';
import { nowSeconds as now } from '../util/time';

/** RFC 8176 methods that prove a passkey, as the proxy's step-up reads them (proxy/step-up.ts). */
const PASSKEY_AMR = ['hwk', 'swk'];

/** The request's error page: what went wrong, and nothing sent to any address the app gave. */
function errorPage(c: Context<AppEnv>, e: AuthorizePageError, status: 400 | 403 = 400): Response {
  const loginHref = `${c.get('config').AUTH_PREFIX}/login`;
  c.header('cache-control', 'no-store');
  return renderPage(c, (nonce, brand) => OAuthErrorPage({ nonce, brand, title: e.title, message: e.description, loginHref }), status);
}

/** An error after the redirect URI is checked: back to the app, with `state` and `iss`. */
function errorRedirect(c: Context<AppEnv>, target: ClientAndRedirect, e: unknown): Response {
  let error: AuthorizeError;
  if (e instanceof AuthorizeError) error = e;
  else {
    const api = toApiError(e);
    if (api.status >= 500 && api.code !== 'unavailable') log.error('authorize_failed', { error: e instanceof Error ? e.message : String(e) });
    error = api.code === 'unavailable' || api.code === 'rate_limited'
      ? new AuthorizeError('temporarily_unavailable', 'The sign-in service is busy or unavailable. Try again shortly.')
      : new AuthorizeError('server_error', 'Something went wrong. Try again later.');
  }
  const href = redirectWith(c, target.redirectUri, { error: error.code, error_description: error.description, state: target.state });
  // An app that registered itself names any redirect URI it likes: sent there unasked, the
  // endpoint would be a redirector on our host for whoever registers (RFC 9700 §4.11.2). Before
  // the user answered anything (a GET), its errors are a page with a link the user may follow.
  if (c.req.method === 'GET' && target.client.source === 'dynamic') {
    const host = URL.canParse(target.redirectUri) ? new URL(target.redirectUri).host || target.redirectUri : target.redirectUri;
    c.header('cache-control', 'no-store');
    return renderPage(
      c,
      (nonce, brand) =>
        OAuthErrorPage({
          nonce,
          brand,
          title: 'This sign-in request could not be completed',
          message: `${target.client.name} asked for something this sign-in service cannot do (${error.code}): ${error.description}`,
          next: { href, label: `Back to ${target.client.name} (${host})` },
        }),
      400,
    );
  }
  return backToApp(c, target, href);
}

/**
 * The answer's way back to the app: a 303, unless this is a GET the browser reached from one of
 * our own pages (a redirect after signing in or stepping up): then a page that goes on by
 * itself (ui/consent-page.tsx `ContinuePage` says why).
 */
function backToApp(c: Context<AppEnv>, target: ClientAndRedirect, href: string): Response {
  c.header('cache-control', 'no-store');
  if (c.req.method === 'GET' && c.req.header('sec-fetch-site') === 'same-origin') {
    return renderPage(c, (nonce, brand) => ContinuePage({ nonce, brand, appName: target.client.name, href }), 200);
  }
  return c.redirect(href, 303);
}

/** The browser's live session here (its access cookie, checked against the session's object), or null. */
async function liveSession(c: Context<AppEnv>): Promise<AuthUser | null> {
  const cookie = readAccessCookie(c);
  if (!cookie) return null;
  try {
    // A code is a way in: the session's own object is asked, no cached "live".
    return await authenticate(c, cookie, true);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_token') return null;
    throw e;
  }
}

/** A browser without a usable session: refresh if it can, else sign in; back to the request after. */
function toSignIn(c: Context<AppEnv>, back: string): Response {
  const prefix = c.get('config').AUTH_PREFIX;
  const rt = encodeURIComponent(back);
  c.header('cache-control', 'no-store');
  return c.redirect(readRefreshCookie(c) ? `${prefix}/refresh?return_to=${rt}` : `${prefix}/login?return_to=${rt}`, 303);
}

const tooLong = () => new AuthorizeError('invalid_request', 'The request is too long to carry through sign-in; send shorter parameters.');

/** True if the session's sign-in meets an `acr_values` entry. */
const meets = (auth: AuthUser, acr: 'mfa' | 'passkey') => (acr === 'mfa' ? auth.amr.includes('mfa') : auth.amr.some((m) => PASSKEY_AMR.includes(m)));

/** The CSP source the consent form's answer redirects on to: the redirect URI's origin (or scheme). */
function redirectTarget(redirectUri: string): string[] {
  const url = new URL(redirectUri);
  if (url.protocol === 'https:' || url.protocol === 'http:') return [url.origin];
  return /^[a-z][a-z0-9+.-]*:$/.test(url.protocol) ? [url.protocol] : [];
}

/** A code for the request, sent to the app; or, the session having ended meanwhile, sign in again. */
async function sendCode(c: Context<AppEnv>, r: AuthorizationRequest, auth: AuthUser): Promise<Response> {
  const code = await issueAuthorizationCode(c, auth, {
    clientId: r.client.id,
    redirectUri: r.redirectUri,
    scope: r.scopes.join(' '),
    nonce: r.nonce,
    codeChallenge: r.codeChallenge,
    resource: r.resource,
  });
  if (code === null) {
    if (r.prompt.has('none')) throw new AuthorizeError('login_required', 'The session has ended: the user must sign in.');
    const back = authorizeReturnPath(c, r);
    if (!back) throw tooLong();
    return toSignIn(c, back);
  }
  return backToApp(c, r, redirectWith(c, r.redirectUri, { code, state: r.state }));
}

/** What the request needs of this browser, in order: a session, a fresh or stronger sign-in, consent; then a code. */
async function authorize(c: Context<AppEnv>, r: AuthorizationRequest): Promise<Response> {
  const config = c.get('config');
  const t = now();
  const auth = await liveSession(c);
  const wantsLogin = r.prompt.has('login');
  // Coming back from signing in or stepping up, `prompt=login` has become `auth_after`.
  const withoutLogin = [...r.prompt].filter((p) => p !== 'login');
  // Only an `auth_after` this server made for this request, recently, says the browser was sent to sign in.
  const authAfter = await authAfterTime(c, r, t);
  if (!auth) {
    if (r.prompt.has('none')) throw new AuthorizeError('login_required', 'The user is not signed in.');
    const back = authorizeReturnPath(c, r, { prompt: withoutLogin, authAfter: wantsLogin ? await authAfterToken(c, r, t) : authAfter === null ? null : r.authAfter });
    if (!back) throw tooLong();
    return toSignIn(c, back);
  }
  // Fresh: signed in (or stepped up) since this server sent the browser to do so; nothing older is asked for again.
  const fresh = authAfter !== null && auth.authTime >= authAfter;
  const stale = !fresh && (wantsLogin || r.authAfter !== null || (r.maxAge !== null && t - auth.authTime > r.maxAge));
  // `acr_values` are voluntary (OpenID Connect Core §3.1.2.1): asked for once, through step-up; not insisted on after.
  const weak = authAfter === null && r.acr.some((a) => !meets(auth, a));
  if (stale && r.prompt.has('none')) throw new AuthorizeError('login_required', 'The user must sign in again for this request.');
  if ((stale || weak) && !r.prompt.has('none')) {
    const back = authorizeReturnPath(c, r, { prompt: withoutLogin, authAfter: await authAfterToken(c, r, t) });
    if (!back) throw tooLong();
    c.header('cache-control', 'no-store');
    return c.redirect(`${config.AUTH_PREFIX}/step-up?return_to=${encodeURIComponent(back)}`, 303);
  }
  if (!r.client.firstParty) {
    const consent = r.prompt.has('consent') ? null : await findConsent(sessionsOf(c, auth.id), r.client.id);
    const granted = new Set(consent ? consent.scope.split(' ') : []);
    // The resource is part of what was allowed: consent to one MCP server is none to another.
    const resources = new Set(consent ? consent.resources.split(' ') : []);
    if (!consent || !r.scopes.every((s) => granted.has(s)) || (r.resource !== null && !resources.has(r.resource))) {
      if (r.prompt.has('none')) throw new AuthorizeError('consent_required', 'The user has not allowed this app what it asks for.');
      return consentPage(c, r, auth);
    }
  }
  return sendCode(c, r, auth);
}

async function consentPage(c: Context<AppEnv>, r: AuthorizationRequest, auth: AuthUser): Promise<Response> {
  const config = c.get('config');
  const request = canonicalQuery(r);
  const token = await consentFormToken(c, auth.sessionId, request, now());
  return renderPage(
    c,
    (nonce, brand) =>
      ConsentPage({
        nonce,
        brand,
        action: `${config.AUTH_PREFIX}/authorize`,
        appName: r.client.name,
        appHost: URL.canParse(r.redirectUri) ? new URL(r.redirectUri).host || r.redirectUri : r.redirectUri,
        // A metadata document's client id is its URL: its host is the one thing the app cannot claim.
        vouchedBy: isMetadataDocumentUrl(r.client.id) ? { kind: 'document', host: new URL(r.client.id).host } : r.client.source === 'dynamic' ? { kind: 'self' } : { kind: 'admin' },
        account: auth.email,
        scopes: r.scopes,
        resource: r.resource,
        request,
        token,
      }),
    200,
    { formTargets: redirectTarget(r.redirectUri) },
  );
}

/** Runs both stages of the request's check, then `then`, answering each error where it belongs. */
async function handle(c: Context<AppEnv>, params: RawParams, then: (r: AuthorizationRequest) => Promise<Response>): Promise<Response> {
  c.header('cache-control', 'no-store');
  let target: ClientAndRedirect;
  try {
    target = await checkClientAndRedirect(c, params);
  } catch (e) {
    if (e instanceof AuthorizePageError) return errorPage(c, e);
    throw e;
  }
  try {
    return await then(checkAuthorizationRequest(c, params, target));
  } catch (e) {
    // A consent answer that is not this session's own: a page, nothing sent to the app.
    if (e instanceof AuthorizePageError) return errorPage(c, e, 403);
    return errorRedirect(c, target, e);
  }
}

const formField = (form: Record<string, unknown>, name: string, max: number): string | null => {
  const value = form[name];
  return typeof value === 'string' && value.length <= max ? value : null;
};

const consentFormGone = () =>
  new AuthorizePageError('This page has expired', 'This consent form is too old or was not made for this browser. Go back to the app and sign in again.');

export const authorizeRoutes = new Hono<AppEnv>()
  .get('/authorize', (c) => handle(c, paramsOf(new URL(c.req.url).searchParams), (r) => authorize(c, r)))
  .post('/authorize', sameOrigin({ always: true }), async (c) => {
    let form: Record<string, unknown>;
    try {
      form = await c.req.parseBody();
    } catch {
      return errorPage(c, new AuthorizePageError('This answer could not be read', 'Go back to the app and try again.'));
    }
    const request = formField(form, 'request', 8192);
    const token = formField(form, 'consent_token', 128);
    const decision = formField(form, 'decision', 8);
    if (request === null || token === null || (decision !== 'allow' && decision !== 'deny')) {
      return errorPage(c, new AuthorizePageError('This answer could not be read', 'The consent form was incomplete. Go back to the app and try again.'));
    }
    return handle(c, paramsOf(new URLSearchParams(request)), async (r) => {
      const auth = await liveSession(c);
      const t = now();
      if (!auth || !(await consentFormTokenValid(c, token, auth.sessionId, canonicalQuery(r), t))) throw consentFormGone();
      const detail = { sid: auth.sessionId, client_id: r.client.id, scope: r.scopes.join(' ') };
      if (decision === 'deny') {
        await recordEvent(c, { event: 'oauth_consent_denied', outcome: 'success', userId: auth.id, detail });
        throw new AuthorizeError('access_denied', 'The user did not allow the app.');
      }
      await storeConsent(sessionsOf(c, auth.id), r.client.id, r.scopes, r.resource === null ? [] : [r.resource], t);
      await recordEvent(c, { event: 'oauth_consent_granted', outcome: 'success', userId: auth.id, detail });
      return sendCode(c, r, auth);
    });
  });
