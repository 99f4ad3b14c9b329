/**
 * Finds the route for a normalised path: the longest matching prefix wins, compared segment
 * by segment and case-insensitively (an origin that ignores case must not let `/ADMIN` slip
 * past the `/admin` route into a laxer one; see util/fold-case.ts for non-ASCII letters that fold
 * to ASCII). Compiled once per config.
 */
import type { RouteConfig } from '../config/routes-schema';
import { serviceBinding } from '../config/routes-schema';
import type { NormalisedPath } from './normalise-path';
import { encodePath } from './normalise-path';
import { foldSegment } from '../util/fold-case';
import { memoize } from '../util/memo';

export interface CompiledRoute {
  config: RouteConfig;
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
    prefix: config.path.split('/').filter(Boolean).map(foldSegment),
    binding,
    originUrl,
    basePath: originUrl ? originUrl.pathname.replace(/\/+$/, '') : '',
    audience: config.audience ?? (originUrl ? originUrl.origin : config.origin),
  };
}

/** Routes sorted longest prefix first, compiled once per config. */
export const routeTable = memoize((routes: readonly RouteConfig[]): CompiledRoute[] =>
  routes.map(compile).sort((a, b) => b.prefix.length - a.prefix.length),
);

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

export function matchRoute(table: readonly CompiledRoute[], path: NormalisedPath): RouteMatch | null {
  const folded = path.segments.map(foldSegment);
  for (const route of table) {
    if (!startsWith(folded, route.prefix)) continue;
    const rest = route.config.strip_prefix ? path.segments.slice(route.prefix.length) : path.segments;
    return { route, forwardPath: encodePath(rest, path.trailingSlash) };
  }
  return null;
}
