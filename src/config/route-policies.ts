/**
 * The routes' compiled policies (README "Policy"), once per isolate. The compiler
 * (config/policy.ts) is loaded by a dynamic `import()` on the first request, and only when some
 * route has a `policy` or an `allow` list, so it costs start-up nothing. The configure
 * middleware awaits it before anything else runs, so a bad policy fails every request closed
 * with `configuration_error` as a bad setting does.
 */
import type { Policy } from './policy';
import type { RouteConfig } from './routes-schema';
import type { Config } from './schema';
import { memoize } from '../util/memo';

export type RoutePolicies = ReadonlyMap<RouteConfig, Policy>;

/** True if the route has rules to compile (a `policy`, or the `allow` shorthand). */
export function hasPolicy(route: RouteConfig): boolean {
  return route.policy !== undefined || route.allow !== undefined;
}

/** Null when no route has rules; otherwise the compiled policies, or a rejection with a ConfigError. */
export const routePolicies = memoize((config: Config): Promise<RoutePolicies> | null => {
  if (!config.ROUTES.some(hasPolicy)) return null;
  const compiled = import('./policy').then(({ compileRoutePolicies }) => compileRoutePolicies(config));
  // Awaited by every request (configure middleware), which answers a rejection; until the first
  // one gets there, this keeps the runtime from reporting it as unhandled.
  compiled.catch(() => undefined);
  return compiled;
});
