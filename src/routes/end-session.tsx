/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `GET` or `POST
 * ${AUTH_PREFIX}/end-session` with `id_token_hint` (an ID token we issued, expired or not: its
 * `aud` names the client), `client_id`, `post_logout_redirect_uri` and `state`.
 *
 * A cross-site request alone never signs anyone out (any page could send one): a signed-in
 * browser is asked on a page, whose same-origin form post (`confirm=yes`) ends the session
 * through the one sign-out (auth/sessions.ts `signOut`: the session, so every token of it, the
 * apps' grants and tokens included). Then the browser goes to the post-logout URI with `state`
 * if the URI is one the client registered exactly (compared as strings) and the client is
 * admin-registered or named by the hint (a dynamic client needs its ID token), else it sees
 * the signed-out page. A browser with no session goes there at once: there is nothing to end.
 */
import { Hono, type Context } from 'hono';
import { presentedToken } from '../auth/authenticate';
import { refuseCrossSite } from '../auth/cross-site';
import { recordEvent } from '../auth/events';
import { findClient, type OAuthClient } from '../auth/oauth-clients';
import { signOut } from '../auth/sessions';
import type { AppEnv } from '../env';
import { clearSessionCookies, readRefreshCookie } from '../http/cookies';
import { badRequest } from '../http/errors';
import { verifyIdTokenHint } from '../tokens/id-token';
import { EndSessionPage, SignedOutPage } from '../ui/end-session-page';
import { renderPage } from '../ui/render';
import { readOAuthForm } from './oauth-request';

/** The parameters this endpoint reads (each at most this long). */
const PARAMETERS = ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'ui_locales'] as const;
const MAX_PARAMETER = 4096;

interface LogoutRequest {
  client: OAuthClient | null;
  /** Where to send the browser after: the registered URI with `state`, or null (the signed-out page). */
  redirect: URL | null;
  /** The parameters as received, to carry through the confirmation. */
  fields: Record<string, string>;
}

async function parameters(c: Context<AppEnv>): Promise<Map<string, string>> {
  if (c.req.method === 'POST') return readOAuthForm(c);
  const params = new Map<string, string>();
  for (const [key, value] of new URL(c.req.url).searchParams) {
    if (params.has(key)) throw badRequest(`The parameter "${key}" is given more than once.`);
    if (value !== '') params.set(key, value);
  }
  return params;
}

async function logoutRequest(c: Context<AppEnv>, params: Map<string, string>): Promise<LogoutRequest> {
  const fields: Record<string, string> = {};
  for (const name of PARAMETERS) {
    const value = params.get(name);
    if (value === undefined) continue;
    if (value.length > MAX_PARAMETER) throw badRequest(`The parameter "${name}" is too long.`);
    fields[name] = value;
  }
  const config = c.get('config');
  const hint = fields.id_token_hint === undefined ? null : await verifyIdTokenHint(c.get('keyring'), config.PUBLIC_URL, fields.id_token_hint);
  if (fields.id_token_hint !== undefined && !hint) throw badRequest('The id_token_hint is not an ID token this gateway issued.');
  if (hint && fields.client_id !== undefined && fields.client_id !== hint.clientId) throw badRequest('The client_id is not the audience of the id_token_hint.');
  const clientId = fields.client_id ?? hint?.clientId;
  const client = clientId === undefined ? null : await findClient(c, clientId);
  const uri = fields.post_logout_redirect_uri;
  let redirect: URL | null = null;
  // RP-Initiated Logout §2: without an ID token as hint, no redirect "unless the OP has other
  // means of confirming the legitimacy" of the target. An admin-registered client's URIs are
  // vouched for by the admin; a dynamic one's (anyone may register one, or host a metadata
  // document) only by an ID token the gateway issued to it, or the gateway is an open redirector.
  const vouched = hint !== null || client?.source === 'admin';
  if (uri !== undefined && client && vouched && client.postLogoutRedirectUris.includes(uri)) {
    redirect = new URL(uri);
    if (fields.state !== undefined) redirect.searchParams.set('state', fields.state);
  }
  return { client, redirect, fields };
}

function after(c: Context<AppEnv>, request: LogoutRequest): Response {
  if (request.redirect) {
    c.header('cache-control', 'no-store');
    return c.redirect(request.redirect.href, 303);
  }
  return renderPage(c, (nonce, brand) => <SignedOutPage nonce={nonce} brand={brand} />);
}

async function endSession(c: Context<AppEnv>) {
  const params = await parameters(c);
  const request = await logoutRequest(c, params);
  const confirmed = c.req.method === 'POST' && params.get('confirm') === 'yes';
  const presented = presentedToken(c);
  const refresh = readRefreshCookie(c);
  if (!confirmed) {
    if (!presented && refresh === undefined) return after(c, request);
    const page = renderPage(c, (nonce, brand) => (
      <EndSessionPage action={`${c.get('config').AUTH_PREFIX}/end-session`} appName={request.client?.name ?? null} fields={request.fields} nonce={nonce} brand={brand} />
    ));
    // The confirmation's post ends in a redirect to the app: form-action must allow its origin.
    const csp = page.headers.get('content-security-policy');
    if (request.redirect && csp) page.headers.set('content-security-policy', csp.replace('form-action ', `form-action ${request.redirect.origin} `));
    return page;
  }
  // The confirmation is the browser's own same-origin form post, never another site's.
  refuseCrossSite(c, { always: true });
  clearSessionCookies(c);
  const result = await signOut(c, presented, refresh);
  if (result.sessionId !== null) {
    await recordEvent(c, { event: 'logout', outcome: 'success', userId: result.userId, detail: { sid: result.sessionId, ended: result.ended, via: 'end_session', client_id: request.client?.id ?? '' } });
  }
  return after(c, request);
}

export const endSessionRoutes = new Hono<AppEnv>().get('/end-session', endSession).post('/end-session', endSession);
