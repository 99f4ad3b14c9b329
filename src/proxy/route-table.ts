/**
 * Finds the route for a host and a normalised path. The gateway's own host (PUBLIC_URL's) is
 * served by the routes without `host`; any other host by the routes whose `host` matches it
 * (config/route-hosts.ts), the most specific host first (an exact name, then the longest
 * wildcard suffix), then the longest matching prefix. Prefixes are compared segment by segment
 * and case-insensitively (an origin that ignores case must not let `/ADMIN` slip past the
 * `/admin` route into a laxer one; see util/fold-case.ts for non-ASCII letters that fold to
 * ASCII). Compiled once per config.
 */
import type { RouteConfig } from '../config/routes-schema';
import type { Config } from '../config/schema';
import { hostMatches, hostPattern, hostSpecificity, normaliseHost, type HostPattern } from '../config/route-hosts';
import { routeAudience, serviceBinding } from '../config/routes-schema';
import type { NormalisedPath } from './normalise-path';
import { encodePath } from './normalise-path';
import { foldSegment } from '../util/fold-case';
import { memoize } from '../util/memo';

export interface CompiledRoute {
  config: RouteConfig;
  /** The host it serves, or null for the gateway's own. */
  host: HostPattern | null;
  /** Case-folded prefix segments (util/fold-case.ts). */
  prefix: string[];
  /** `service:BINDING` name, or null for a URL origin. */
  binding: string | null;
  /** URL origins: scheme+host+port, and the base path to prepend (no trailing slash). */
  originUrl: URL | null;
  basePath: string;
  /** `aud` of the assertion. */
  audience: string;
}

export interface RouteMatch {
  route: CompiledRoute;
  /** The path the origin receives (prefix removed if `strip_prefix`), canonically encoded. */
  forwardPath: string;
}

function compile(config: RouteConfig): CompiledRoute {
  const binding = serviceBinding(config.origin);
  const originUrl = binding ? null : new URL(config.origin);
  return {
    config,
    host: config.host === undefined ? null : hostPattern(config.host),
    prefix: config.path.split('/').filter(Boolean).map(foldSegment),
    binding,
    originUrl,
    basePath: originUrl ? originUrl.pathname.replace(/\/+$/, '') : '',
    audience: routeAudience(config),
  };
}

const specificity = (r: CompiledRoute) => (r.host === null ? -1 : hostSpecificity(r.host));

/** Routes sorted most specific host first, then longest prefix first; compiled once per config. */
export const routeTable = memoize((routes: readonly RouteConfig[]): CompiledRoute[] =>
  routes.map(compile).sort((a, b) => specificity(b) - specificity(a) || b.prefix.length - a.prefix.length),
);

/**
 * Which routes a request's host is for: `null` for the gateway's own host (its routes have no
 * `host`), the normalised host when some route names it, or `unknown` (nothing serves it).
 */
export type RequestHost = null | string | 'unknown';

/** The gateway's own host, without the port (once per config). */
export const gatewayHost = memoize((config: Pick<Config, 'PUBLIC_URL'>): string => normaliseHost(new URL(config.PUBLIC_URL).host));

/** The {@link RequestHost} of `host` (a URL's `host`, port and all) for the config's routes. */
export function requestHost(config: Pick<Config, 'PUBLIC_URL' | 'ROUTES'>, host: string): RequestHost {
  const h = normaliseHost(host);
  if (h === gatewayHost(config)) return null;
  const table = routeTable(config.ROUTES);
  return table.some((r) => r.host !== null && hostMatches(r.host, h)) ? h : 'unknown';
}

/** `folded` holds the path's segments already folded, so each is folded once per request. */
function startsWith(folded: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length > folded.length) return false;
  for (let i = 0; i < prefix.length; i++) if (folded[i] !== prefix[i]) return false;
  return true;
}

const foldedPrefixes = new Map<string, string[]>();

/** True if the path lies under a prefix given as text (e.g. the gateway's own `/auth`). */
export function isUnder(path: NormalisedPath, prefix: string): boolean {
  let folded = foldedPrefixes.get(prefix);
  if (!folded) {
    folded = prefix.split('/').filter(Boolean).map(foldSegment);
    foldedPrefixes.set(prefix, folded);
  }
  return startsWith(path.segments.slice(0, folded.length).map(foldSegment), folded);
}

/** True if `host` (port and all) is an app host: not the gateway's, and named by some route. */
export function isAppHost(config: Pick<Config, 'PUBLIC_URL' | 'ROUTES'>, host: string): boolean {
  const h = requestHost(config, host);
  return h !== null && h !== 'unknown';
}

/** True if some route names a host (memoized per routes). */
export const hasHostRoutes = memoize((routes: readonly RouteConfig[]): boolean => routes.some((r) => r.host !== undefined));

/**
 * The route for `path` on `host` (normalised, as {@link requestHost} gives it; null, the
 * default, for the gateway's own host), or null.
 */
export function matchRoute(table: readonly CompiledRoute[], path: NormalisedPath, host: string | null = null): RouteMatch | null {
  const folded = path.segments.map(foldSegment);
  for (const route of table) {
    if (host === null ? route.host !== null : route.host === null || !hostMatches(route.host, host)) continue;
    if (!startsWith(folded, route.prefix)) continue;
    const rest = route.config.strip_prefix ? path.segments.slice(route.prefix.length) : path.segments;
    return { route, forwardPath: encodePath(rest, path.trailingSlash) };
  }
  return null;
}
