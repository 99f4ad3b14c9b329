/**
 * `GET /auth/verify`: forward-auth for nginx `auth_request`, Traefik `forwardAuth` and Caddy
 * `forward_auth`. The proxy in front sends the client's headers (cookie or bearer token); the
 * answer is 200 with the identity headers and the assertion, 401, or 403 by policy.
 *
 * `X-Forwarded-Uri` (Traefik, Caddy) or `X-Original-URI` (nginx) picks the route whose policy
 * and audience apply and gives the policy its path (if both come and name different routes, or
 * different paths on a route with rules, the request is refused); `X-Forwarded-Method` / `X-Original-Method` give it the method. A URI that matches no route gets the default policy: a signed-in user is required
 * and the assertion's audience is the gateway's own `PUBLIC_URL`.
 *
 * `X-Forwarded-Host`, when it names a host some route names (README "Hosts"), picks among that
 * host's routes alone (most specific host, then longest prefix); a URI none of them matches gets
 * the default policy. Any other host is matched by path against the routes without `host`, as
 * for a single host.
 * A service's own token (README "Machines") passes where the route's policy admits services; the
 * answer then carries `X-Auth-Client-Id` and a service assertion. Either service-token header
 * is refused here, on every route (proxy/gate.ts): the proxy in front would pass it on to the origin.
 * Only tokens of the gateway host are accepted here: an app host's own cookie is bound to that
 * host (auth/authenticate.ts), and forward-auth answers on the gateway's.
 */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { REFUSED_METHODS } from '../middleware/refuse-methods';
import { identityHeaders } from '../proxy/forward-headers';
import { gate } from '../proxy/gate';
import { hasPolicy } from '../config/route-policies';
import { normaliseRequestTarget, type NormalisedPath } from '../proxy/normalise-path';
import { matchRoute, requestHost, routeTable, type CompiledRoute } from '../proxy/route-table';
import { assertionFor } from '../tokens/assertion';
import type { Config } from '../config/schema';
import { memoize } from '../util/memo';

const NOT_A_PLAIN_PATH = 'The forwarded URI is not a plain path.';

const defaultRoute = memoize((config: Config): CompiledRoute => ({
  host: null,
  config: { path: '/', origin: config.PUBLIC_URL, auth: 'required', strip_prefix: false, timeout_seconds: 30, revocation: 'cached' },
  prefix: [],
  binding: null,
  originUrl: new URL(config.PUBLIC_URL),
  basePath: '',
  audience: config.PUBLIC_URL,
}));

interface ForwardedRoute {
  route: CompiledRoute;
  /** The forwarded URI's path, or null when none came (then the default route applies). */
  path: NormalisedPath | null;
}

function routeFor(config: Config, uri: string | undefined, host: string | null): ForwardedRoute {
  if (uri === undefined || uri === '') return { route: defaultRoute(config), path: null };
  let path;
  try {
    // A raw request target, as nginx's $request_uri: never `new URL(uri, base)` on its own,
    // which reads `//ops/x` as host `ops` and `\` as `/` (see normaliseRequestTarget).
    path = normaliseRequestTarget(uri);
  } catch {
    // A proxy only understands 2xx, 401 and 403 here: an unclear path is refused, not a 400.
    throw new ApiError('forbidden', NOT_A_PLAIN_PATH);
  }
  const table = routeTable(config.ROUTES);
  // A named host is decided by its own routes alone, as on the proxy: the gateway host's routes
  // are another site's (a public one there must not open the host's unlisted paths).
  return { route: matchRoute(table, path, host)?.route ?? defaultRoute(config), path };
}

/**
 * The route the proxy in front names. Each proxy sets only its own header and passes the
 * client's other headers through (nginx forwards a client's `X-Forwarded-Uri`, Traefik and
 * Caddy a client's `X-Original-URI`), so when both are present and pick different routes (or,
 * on a route with rules, which read the path below it, different paths) one of them is the
 * client's: refused, rather than letting a client choose the laxer policy.
 */
function forwardedRoute(config: Config, forwardedUri: string | undefined, originalUri: string | undefined, forwardedHost: string | undefined): ForwardedRoute {
  const hostNamed = forwardedHost === undefined ? null : requestHost(config, forwardedHost.trim());
  const host = hostNamed === 'unknown' ? null : hostNamed;
  const named = routeFor(config, forwardedUri ?? originalUri, host);
  if (forwardedUri !== undefined && originalUri !== undefined) {
    const other = routeFor(config, originalUri, host);
    if (other.route !== named.route) throw new ApiError('forbidden', 'X-Forwarded-Uri and X-Original-URI name different routes.');
    // A route's policy reads the path below it too (path globs, the external decision).
    if (hasPolicy(named.route.config) && !samePath(other.path, named.path)) {
      throw new ApiError('forbidden', 'X-Forwarded-Uri and X-Original-URI name different paths.');
    }
  }
  return named;
}

function samePath(a: NormalisedPath | null, b: NormalisedPath | null): boolean {
  if (a === null || b === null) return a === b;
  return a.trailingSlash === b.trailingSlash && a.segments.length === b.segments.length && a.segments.every((s, i) => s === b.segments[i]);
}

/**
 * The original method: Traefik and Caddy send X-Forwarded-Method, nginx (as the README
 * configures it) X-Original-Method. As for the URI, each proxy passes the client's copy of the
 * other header through, so two that disagree mean one is the client's: refused.
 */
function forwardedMethod(forwarded: string | undefined, original: string | undefined): string | undefined {
  if (forwarded !== undefined && original !== undefined && forwarded.trim().toUpperCase() !== original.trim().toUpperCase()) {
    throw new ApiError('forbidden', 'X-Forwarded-Method and X-Original-Method name different methods.');
  }
  const method = (forwarded ?? original)?.trim().toUpperCase();
  // The built-in proxy answers these 405; forward-auth can only say 403.
  if (method !== undefined && REFUSED_METHODS.has(method)) throw new ApiError('forbidden', `${method} requests are not allowed.`);
  return method;
}

/** The `_method` query parameters of a forwarded request target (a method override). */
function methodParams(uri: string | undefined): string[] {
  const query = uri === undefined ? -1 : uri.indexOf('?');
  if (uri === undefined || query === -1) return [];
  const fragment = uri.indexOf('#', query);
  return new URLSearchParams(uri.slice(query + 1, fragment === -1 ? undefined : fragment)).getAll('_method');
}

/**
 * The app's own origin as the proxy states it. A cross-site page cannot make a browser send
 * these headers, so trusting them for the `Origin` comparison cannot help a forged request.
 */
function forwardedOrigin(c: Context<AppEnv>): string[] {
  const proto = c.req.header('x-forwarded-proto');
  const host = forwardedHost(c);
  return (proto === 'https' || proto === 'http') && host ? [`${proto}://${host}`] : [];
}

function forwardedHost(c: Context<AppEnv>): string {
  const host = c.req.header('x-forwarded-host');
  return host && /^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) ? host.toLowerCase() : '';
}

export const verifyRoute = new Hono<AppEnv>().get('/verify', async (c) => {
  const config = c.get('config');
  const { route, path } = forwardedRoute(config, c.req.header('x-forwarded-uri'), c.req.header('x-original-uri'), c.req.header('x-forwarded-host'));
  // A cookie-authenticated unsafe request from another site is refused here as the proxy would.
  const method = forwardedMethod(c.req.header('x-forwarded-method'), c.req.header('x-original-method'));
  const verdict = await gate(c, route, {
    refuseCrossSite: true,
    method,
    trustedOrigins: forwardedOrigin(c),
    // This request comes from the proxy in front, so its own IP and country are the proxy's, and
    // a header naming the client's, or the host, could be the client's own (nginx passes
    // X-Forwarded-* through): a policy's ip and country are unknown here, which fails closed
    // (proxy/policy.ts), and the external decision is told no host. Gathered only for a route
    // with rules, as on the proxy.
    request: hasPolicy(route.config)
      ? {
          method: method ?? null,
          // The origin reads `_method` from the URI it gets: from either header, as either may be it.
          methodParams: [...methodParams(c.req.header('x-forwarded-uri')), ...methodParams(c.req.header('x-original-uri'))],
          path,
          host: null,
          ip: null,
          country: null,
        }
      : undefined,
  });
  c.header('cache-control', 'no-store');
  if (verdict.pass && verdict.user) {
    const assertion = await assertionFor(c.get('keyring'), config.PUBLIC_URL, verdict.user, route.audience);
    for (const [name, value] of Object.entries(identityHeaders(verdict.user, assertion))) c.header(name, value);
  } else if (verdict.pass && verdict.service) {
    // Loaded already: the gate admitted the service through this module.
    const identity = await (await import('../proxy/service-caller')).serviceIdentityHeaders(c, verdict.service, route.audience);
    for (const [name, value] of Object.entries(identity)) c.header(name, value);
  }
  return c.body(null, 200);
});
