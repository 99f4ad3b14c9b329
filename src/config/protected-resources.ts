/**
 * The protected resources (RFC 9728) the routes declare (`resource = "mcp"`): each route's
 * resource identifier is its own URL, `https://<host><path>` (the route's host, or
 * PUBLIC_URL's), which RFC 8707 `resource` parameters name and grant tokens carry as `aud`.
 */
import type { RouteConfig } from './routes-schema';
import { routesNeedGroups } from './routes-schema';

export interface ProtectedResource {
  /** The resource identifier: the route's URL without a trailing slash. */
  url: string;
  route: RouteConfig;
}

/** The resource identifier of a route (whether or not it is marked as a resource). */
export function resourceUrl(route: RouteConfig, publicUrl: string): string {
  const origin = route.host === undefined ? publicUrl : `${new URL(publicUrl).protocol}//${route.host}`;
  return route.path === '/' ? origin : `${origin}${route.path}`;
}

/** Every route marked as a protected resource, with its identifier. */
export function protectedResources(routes: readonly RouteConfig[], publicUrl: string): ProtectedResource[] {
  return routes.filter((r) => r.resource !== undefined && !(r.host ?? '').startsWith('*.')).map((route) => ({ url: resourceUrl(route, publicUrl), route }));
}

/** Where RFC 9728 §3.1 puts a resource's metadata: the well-known name between its origin and its path. */
export const METADATA_PATH = '/.well-known/oauth-protected-resource';

/** The URL of a resource's metadata document (`resource` as {@link resourceUrl} gives it). */
export function resourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  return `${url.origin}${METADATA_PATH}${url.pathname === '/' ? '' : url.pathname}`;
}

/**
 * Why the routes' protected resources cannot be served as written, naming the route, or null.
 * A resource needs one identifier, so no wildcard host; it must not be the gateway itself
 * (PUBLIC_URL is every session token's audience), nor lie under the gateway's own paths or
 * under `/.well-known/` (where its metadata lives); and its policy may not decide on provider
 * groups, which a grant token does not carry (the route would refuse everyone).
 */
export function resourceRoutesProblem(routes: readonly RouteConfig[], authPrefix: string): string | null {
  for (const [i, route] of routes.entries()) {
    if (route.resource === undefined) continue;
    const name = `route ${i} (${route.host === undefined ? '' : `host ${route.host}, `}path ${route.path}) is a protected resource (resource = "${route.resource}") and`;
    const under = (prefix: string) => route.path.toLowerCase() === prefix || route.path.toLowerCase().startsWith(`${prefix}/`);
    if ((route.host ?? '').startsWith('*.')) return `${name} has a wildcard host: a protected resource needs one exact host, its identifier`;
    if (route.host === undefined && route.path === '/') return `${name} covers the gateway's own URL (PUBLIC_URL): give it a path of its own, or a host`;
    if (route.host === undefined && under(authPrefix.toLowerCase())) return `${name} lies under the gateway's own ${authPrefix}`;
    if (under('/.well-known')) return `${name} lies under /.well-known/, where resource metadata is served`;
    if (routesNeedGroups([route])) return `${name} decides on groups, which the tokens of OAuth clients do not carry: decide on emails, domains or roles`;
  }
  return null;
}
