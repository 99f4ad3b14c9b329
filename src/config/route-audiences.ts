/**
 * Every token the gateway signs says whom it is for in `aud`, and one key signs them all. An
 * origin that checks `aud` but not `typ` (README's examples check both; not every origin will)
 * would take any of them for its route's assertion when the audiences are equal. So a route's
 * audience may not be the audience of another kind of token: the gateway's session tokens
 * (PUBLIC_URL), an app host's (its origin), a protected resource's grant tokens (its URL), the
 * userinfo endpoint's, or a logout notice's (its target).
 */
import { userinfoUrl } from './oauth-endpoints';
import { resourceUrl } from './protected-resources';
import { hostMatches, hostPattern } from './route-hosts';
import { routeAudience, type RouteConfig } from './routes-schema';

/** A message naming the first route whose audience another token carries, or null. */
export function routeAudienceProblem(routes: readonly RouteConfig[], config: { PUBLIC_URL: string; AUTH_PREFIX: string }): string | null {
  const taken = new Map<string, string>([
    [config.PUBLIC_URL, "the gateway's own session tokens (PUBLIC_URL)"],
    [userinfoUrl(config), "the userinfo endpoint's tokens"],
  ]);
  for (const r of routes) {
    if (r.resource !== undefined) taken.set(resourceUrl(r, config.PUBLIC_URL), `the grant tokens of the protected resource ${r.host ?? ''}${r.path}`);
    if (r.logout_notify !== undefined) taken.set(r.logout_notify, `the logout notices sent to ${r.logout_notify}`);
  }
  const { protocol, port } = new URL(config.PUBLIC_URL);
  const hosts = routes.flatMap((r) => (r.host === undefined ? [] : [hostPattern(r.host)]));
  for (const [i, r] of routes.entries()) {
    const audience = routeAudience(r);
    let clash = taken.get(audience);
    if (clash === undefined && URL.canParse(audience)) {
      // An app host's session tokens carry its origin: the gateway's scheme and port.
      const url = new URL(audience);
      const isOrigin = audience === url.origin && url.protocol === protocol && url.port === port;
      if (isOrigin && hosts.some((pattern) => hostMatches(pattern, url.hostname))) clash = `the session tokens of the app host ${url.host}`;
    }
    if (clash !== undefined) {
      return `route ${i} (path ${r.path}): its audience ${audience} is also the audience of ${clash}, so its origin could take one for the other: set the route's audience to a name of its own`;
    }
  }
  return null;
}
