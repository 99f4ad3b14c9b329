/**
 * The protected resources (RFC 9728) the routes declare (`resource = "mcp"`): each route's
 * resource identifier is its own URL, `https://<host><path>` (the route's host, or
 * PUBLIC_URL's), which RFC 8707 `resource` parameters name and grant tokens carry as `aud`.
 */
import type { RouteConfig } from './routes-schema';

export interface ProtectedResource {
  /** The resource identifier: the route's URL without a trailing slash. */
  url: string;
  route: RouteConfig;
}

/** The resource identifier of a route (whether or not it is marked as a resource). */
export function resourceUrl(route: RouteConfig, publicUrl: string): string {
  // A host route is served on the gateway's own scheme and port (one Worker answers every
  // host): in development `http://app.localhost:8787`, which is the URL a client derives.
  const { protocol, port } = new URL(publicUrl);
  const origin = route.host === undefined ? publicUrl : `${protocol}//${route.host}${port === '' ? '' : `:${port}`}`;
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
