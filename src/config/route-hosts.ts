/**
 * The `host` of a route (README "Hosts"): an exact name (`wiki.example.com`) or one leading
 * wildcard label (`*.example.com`, any one or more labels in front of `example.com`). Hosts are
 * compared in lower case, without the port and without a trailing dot, as browsers send them.
 */

/** A DNS name of letters, digits and hyphens (IDNs in their `xn--` form), 253 characters at most. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Two-label public suffixes common enough that a wildcard on one (`*.co.uk`) is more likely a
 * mistake than a plan. The Public Suffix List itself is far too big for the Worker's upload
 * budget; a wildcard needs at least two labels after `*.` (so `*.com` is refused whatever the
 * TLD), and this short list covers the two-label suffixes most deployments would meet. A
 * wildcard covering anyone's domain under a shared suffix would send every such host to one origin.
 */
export const TWO_LABEL_PUBLIC_SUFFIXES: ReadonlySet<string> = new Set([
  'co.uk', 'org.uk', 'ac.uk', 'gov.uk', 'com.au', 'net.au', 'org.au', 'co.nz', 'co.jp', 'ne.jp', 'co.kr',
  'co.in', 'com.br', 'com.cn', 'com.tw', 'com.hk', 'com.sg', 'co.za', 'com.mx', 'com.tr',
  // Shared hosting, where every customer gets a name of their own under one suffix.
  'github.io', 'pages.dev', 'workers.dev', 'netlify.app', 'vercel.app', 'herokuapp.com', 'appspot.com',
]);

/** A host as routing compares it: lower case, no port, no trailing dot. */
export function normaliseHost(host: string): string {
  let h = host.toLowerCase();
  // An IPv6 literal keeps its brackets; any other host loses a `:port`.
  if (h.startsWith('[')) h = h.slice(0, h.indexOf(']') + 1);
  else if (h.includes(':')) h = h.slice(0, h.indexOf(':'));
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** Why `host` cannot be a route's host, or null if it can (`host` as written in ROUTES). */
export function hostProblem(host: string): string | null {
  const h = host.trim().toLowerCase();
  const wildcard = h.startsWith('*.');
  const name = wildcard ? h.slice(2) : h;
  if (name.length === 0 || name.length > 253 || name.includes('*')) return `host "${host}" must be a DNS name, or one leading "*." then a DNS name`;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return `host "${host}" must be a DNS name (letters, digits, hyphens; no port, scheme or path)`;
  if (/^\d+$/.test(labels.at(-1)!)) return `host "${host}" must be a name, not an IP address`;
  if (wildcard && (labels.length < 2 || TWO_LABEL_PUBLIC_SUFFIXES.has(name))) {
    return `host "${host}" is a wildcard on a top-level domain or public suffix: it would cover other people's domains`;
  }
  return null;
}

/** A compiled host pattern: an exact name, or the suffix (`.example.com`) a wildcard matches. */
export interface HostPattern {
  exact: string | null;
  suffix: string | null;
}

export function hostPattern(host: string): HostPattern {
  const h = host.trim().toLowerCase();
  return h.startsWith('*.') ? { exact: null, suffix: h.slice(1) } : { exact: h, suffix: null };
}

/** True if the normalised `host` is matched by the pattern. */
export function hostMatches(pattern: HostPattern, host: string): boolean {
  return pattern.exact !== null ? host === pattern.exact : host.length > pattern.suffix!.length && host.endsWith(pattern.suffix!);
}

/**
 * How specific a pattern is, for ordering: an exact name over any wildcard, a longer wildcard
 * suffix over a shorter one.
 */
export function hostSpecificity(pattern: HostPattern): number {
  return pattern.exact !== null ? Number.MAX_SAFE_INTEGER : pattern.suffix!.length;
}

/**
 * Checks of the routes' hosts against the gateway's own host (`PUBLIC_URL`'s): a message naming
 * the route, or null. A host route may not name the gateway's host (its routes are those without
 * `host`), and its origin may not be the gateway itself (its own host, or `PUBLIC_URL`'s): the
 * request would come back in and go round.
 */
export function hostRoutesProblem(routes: readonly { host?: string; path: string; origin: string }[], publicUrl: string): string | null {
  const gatewayHost = normaliseHost(new URL(publicUrl).host);
  for (const [i, route] of routes.entries()) {
    if (route.host === undefined) continue;
    const name = `route ${i} (host ${route.host}, path ${route.path})`;
    const pattern = hostPattern(route.host);
    if (hostMatches(pattern, gatewayHost)) return `${name} names the gateway's own host ${gatewayHost}: routes for it have no host`;
    if (!/^https?:\/\//i.test(route.origin) || !URL.canParse(route.origin)) continue;
    const originHost = normaliseHost(new URL(route.origin).host);
    if (originHost === gatewayHost || hostMatches(pattern, originHost)) return `${name} has the gateway itself as its origin (${route.origin}): requests would loop`;
  }
  return null;
}
