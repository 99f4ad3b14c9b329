/**
 * The identity-aware reverse proxy: every path the gateway does not own is matched against
 * `ROUTES`, checked against the route's policy, and forwarded with verified identity attached.
 * Origin responses (redirects, WebSocket upgrades, streamed bodies) go back as they came, less
 * any attempt to set the gateway's own cookies (on a WebSocket 101 too); the gateway's own refusals carry its security
 * headers.
 *
 * @example
 * app.all('*', proxy({ gatewayHeaders: gatewayHeaders(config) }))
 */
import type { Context, MiddlewareHandler } from 'hono';
import { decodeProtectedHeader } from 'jose/decode/protected_header';
import type { AppEnv } from '../env';
import { clientIp } from '../http/client';
import { ACCESS_COOKIE, MFA_COOKIE, readSsoStateCookie, REFRESH_COOKIE, SSO_STATE, SSO_STATE_COOKIE, ssoStateCookie } from '../http/cookies';
import { queryValue } from '../http/query-value';
import { randomId } from '../util/random';
import { ApiError } from '../http/errors';
import { errorHandler } from '../middleware/error-handler';
import { assertionFor } from '../tokens/assertion';
import { FLOW_COOKIE } from '../tokens/flow-cookie-name';
import { forwardHeaders, identityHeaders } from './forward-headers';
import { gate, type GateOptions } from './gate';
import type { Config } from '../config/schema';
import { normalisePath } from './normalise-path';
import { fetchOrigin } from './origin-fetch';
import { isUnder, matchRoute, requestHost, routeTable } from './route-table';
import { hasPolicy } from '../config/route-policies';

export interface ProxyOptions {
  /** Middleware that adds the gateway's security headers to a response the gateway makes itself. */
  gatewayHeaders: MiddlewareHandler<AppEnv>;
}

/**
 * Drops `Set-Cookie` lines by which an origin would overwrite or clear the gateway's session,
 * or plant an OAuth flow of its own choosing (login CSRF). A WebSocket handshake's 101 too: a
 * browser stores cookies from it like from any response.
 */
function withoutGatewaySetCookies(response: Response): Response {
  // Most responses set no cookie: has() answers that without building getSetCookie()'s array.
  if (!response.headers.has('set-cookie')) return response;
  const lines = response.headers.getSetCookie();
  const ours = (line: string) => {
    const name = sentName(line);
    return name === ACCESS_COOKIE || name === REFRESH_COOKIE || name === FLOW_COOKIE || name === MFA_COOKIE || name === SSO_STATE_COOKIE;
  };
  if (!lines.some(ours)) return response;
  // A 101 carries the WebSocket itself (workerd's `webSocket`), which a plain copy would lose.
  const copy =
    response.status === 101
      ? new Response(null, { status: 101, statusText: response.statusText, headers: response.headers, webSocket: response.webSocket })
      : new Response(response.body, response);
  copy.headers.delete('set-cookie');
  for (const line of lines) if (!ours(line)) copy.headers.append('set-cookie', line);
  return copy;
}

/**
 * The name a `Set-Cookie` line's cookie is sent back under. A nameless cookie (`=a=b`, or no
 * `=` at all) is sent as its value alone, so `=__Host-gatehouse=x` comes back as
 * `__Host-gatehouse=x`: its name is the value's (browsers that refuse prefixed values in
 * nameless cookies are not all of them).
 */
function sentName(line: string): string {
  const semi = line.indexOf(';');
  const pair = semi < 0 ? line : line.slice(0, semi);
  const eq = pair.indexOf('=');
  if (eq < 0) return pair.trim();
  const name = pair.slice(0, eq).trim();
  if (name !== '') return name;
  const value = pair.slice(eq + 1);
  const inner = value.indexOf('=');
  return (inner < 0 ? value : value.slice(0, inner)).trim();
}

/** Either the origin's response (passed back as is) or a redirect the gateway makes itself. */
type Outcome = { origin: Response } | { redirect: string; status?: 302 | 303; setCookie?: string };

async function forward(c: Context<AppEnv>): Promise<Outcome> {
  const config = c.get('config');
  const url = new URL(c.req.url);
  const path = normalisePath(url.pathname);
  // The gateway's own endpoints are never proxied, whatever their case or encoding.
  if (isUnder(path, config.AUTH_PREFIX)) throw new ApiError('not_found', 'No such endpoint.');
  // A host no route names (and not the gateway's own) goes nowhere, never to a default origin.
  const host = requestHost(config, url.host);
  if (host === 'unknown') throw new ApiError('not_found', 'No route serves this host.');
  const match = matchRoute(routeTable(config.ROUTES), path, host);
  if (!match) throw new ApiError('not_found', 'No route matches this path.');
  const { route, forwardPath } = match;
  c.set('policy', route.config.auth);
  // A route on a host of its own is named with it: `app.example.com/`, as logout notices name it.
  c.set('proxyRoute', route.config.host === undefined ? route.config.path : `${route.config.host}${route.config.path}`);

  // On an app host, a browser sent through single sign-on holds a state of its own there (the
  // one it has, so that its tabs do not replace each other's).
  const state = host === null ? null : ssoStateOf(c);
  // Gathered only for a route with rules: the bench's plain verified route pays nothing here.
  const request = hasPolicy(route.config)
    ? { method: c.req.method, methodParams: url.searchParams.getAll('_method'), path, host: url.host, ip: clientIp(c), country: edgeCountry(c.req.raw) }
    : undefined;
  const verdict = await gate(
    c,
    route,
    state === null ? { returnTo: url.href, refuseCrossSite: true, request, serviceHeaders: true } : { ...appHostGate(config, url, state), request, serviceHeaders: true },
  );
  if (!verdict.pass) return { redirect: verdict.redirect, status: verdict.status, setCookie: state === null ? undefined : ssoStateCookie(state) };

  const websocket = (c.req.header('upgrade') ?? '').toLowerCase() === 'websocket';
  const upstreamAssertion = route.config.upstream_authorization === 'assertion';
  const headers = forwardHeaders(c.req.raw.headers, {
    clientIp: clientIp(c),
    proto: url.protocol === 'https:' ? 'https' : 'http',
    host: url.host,
    // With upstream_authorization the origin reads Authorization as the identity: never the client's.
    dropAuthorization: verdict.via === 'bearer' || upstreamAssertion || ((route.config.auth === 'public' || verdict.service !== undefined) && carriesOurBearer(c)),
    websocket,
  });
  if (verdict.user) {
    const assertion = await assertionFor(c.get('keyring'), config.PUBLIC_URL, verdict.user, route.audience);
    for (const [name, value] of Object.entries(identityHeaders(verdict.user, assertion))) headers.set(name, value);
    if (upstreamAssertion) headers.set('authorization', `Bearer ${assertion}`);
  } else if (verdict.service) {
    // Loaded already: the gate admitted the service through this module.
    const identity = await (await import('./service-caller')).serviceIdentityHeaders(c, verdict.service, route.audience);
    for (const [name, value] of Object.entries(identity)) headers.set(name, value);
    if (upstreamAssertion) headers.set('authorization', `Bearer ${identity['x-auth-assertion']}`);
  }
  const response = await fetchOrigin(c.env, route, {
    method: c.req.method,
    pathAndQuery: `${forwardPath}${url.search}`,
    headers,
    body: c.req.method === 'GET' || c.req.method === 'HEAD' ? null : c.req.raw.body,
    host: url.host,
  });
  return { origin: withoutGatewaySetCookies(response) };
}

/** The client's country as the Cloudflare edge saw it (`request.cf.country`), if the runtime says. */
function edgeCountry(request: Request): string | null {
  const country: unknown = request.cf?.country;
  return typeof country === 'string' && country !== '' ? country : null;
}

/**
 * The gate's options on an app host: the app's own origin is same-origin there, and a browser
 * without a usable cookie of this host gets one through the gateway's `/sso`
 * (routes/host-sign-in.ts), carrying `state`, which this host's cookie holds (http/cookies.ts).
 */
function appHostGate(config: Config, url: URL, state: string): GateOptions {
  const ssoPath = `${config.AUTH_PREFIX}/sso?return_to=${queryValue(url.href)}&state=${state}`;
  const sso = `${config.PUBLIC_URL}${ssoPath}`;
  return {
    returnTo: url.href,
    refuseCrossSite: true,
    trustedOrigins: [url.origin],
    viaGateway: { signIn: sso, stepUp: `${config.PUBLIC_URL}${config.AUTH_PREFIX}/step-up?return_to=${encodeURIComponent(ssoPath)}` },
  };
}

/** The browser's single sign-on state on this host, or a new one. */
function ssoStateOf(c: Context<AppEnv>): string {
  const held = readSsoStateCookie(c);
  return held !== undefined && SSO_STATE.test(held) ? held : randomId(16);
}

/** On a public route nothing is verified, but a bearer token of ours still must not leak onward. */
function carriesOurBearer(c: Context<AppEnv>): boolean {
  const header = c.req.header('authorization');
  if (!header || !/^Bearer\s/i.test(header)) return false;
  try {
    const { kid } = decodeProtectedHeader(header.replace(/^Bearer\s+/i, '').trim());
    return typeof kid === 'string' && c.get('keyring').byKid.has(kid);
  } catch {
    return false;
  }
}

export function proxy(options: ProxyOptions): MiddlewareHandler<AppEnv> {
  return async (c) => {
    let refusal: Response;
    try {
      const outcome = await forward(c);
      if ('origin' in outcome) return outcome.origin;
      refusal = new Response(null, { status: outcome.status ?? 302, headers: { location: outcome.redirect, 'cache-control': 'no-store' } });
      if (outcome.setCookie) refusal.headers.append('set-cookie', outcome.setCookie);
    } catch (e) {
      // The app's error handler renders (and, for the unexpected, logs) as everywhere else.
      refusal = await errorHandler(e instanceof Error ? e : new Error(String(e)), c);
    }
    await options.gatewayHeaders(c, async () => {
      c.res = refusal;
    });
    return c.res;
  };
}
