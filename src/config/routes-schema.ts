/**
 * Schema of the `ROUTES` setting: which paths are proxied where, and who may pass.
 * Prefixes are compared case-insensitively and segment by segment (see proxy/route-table.ts),
 * so two routes that differ only in case are refused here.
 */
import * as v from 'valibot';
import { foldSegment } from '../util/fold-case';
import { memoize } from '../util/memo';
import { hostProblem } from './route-hosts';

const pathPrefix = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^\/[^?#\\;%]*$/, 'path must start with / and hold no query, fragment, backslash, ";" or "%"'),
  v.check((p) => !/(^|\/)\.\.?(\/|$)/.test(p), 'path must be a plain normalised prefix (no . or .. segments)'),
  v.transform((p) => '/' + p.split('/').filter(Boolean).join('/')),
);

const SERVICE_ORIGIN = /^service:[A-Z_][A-Z0-9_]*$/i;
/** A notice target through a service binding: `service:NAME`, optionally with the path to POST to. */
const SERVICE_TARGET = /^service:([A-Z_][A-Z0-9_]*)(\/[^?#\\\s]*)?$/i;

const origin = v.pipe(
  v.string(),
  v.trim(),
  v.check((o) => {
    if (SERVICE_ORIGIN.test(o)) return true;
    try {
      const u = new URL(o);
      return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, 'origin must be an http(s) URL (no credentials, query or fragment) or service:BINDING'),
);

/**
 * README "Revocation": where the route's origin is told that a gateway session ended (a signed
 * logout token, POSTed as OpenID Connect Back-Channel Logout does). An https URL (plain http to
 * a loopback host in development: load.ts checks that, knowing the environment) without
 * credentials or fragment, or `service:BINDING[/path]`.
 */
const logoutNotify = v.pipe(
  v.string('logout_notify must be a string'),
  v.trim(),
  v.check((t) => {
    if (SERVICE_TARGET.test(t)) return true;
    if (!URL.canParse(t) || t.includes('#')) return false;
    const u = new URL(t);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password;
  }, 'logout_notify must be an https URL (no credentials or fragment) or service:BINDING, optionally service:BINDING/path'),
);

/** README "Hosts": an exact name or one leading `*.`; stored in lower case, compared without the port. */
const host = v.pipe(
  v.string('host must be a string'),
  v.trim(),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? hostProblem(dataset.value) : null;
    if (problem) addIssue({ message: problem });
  }),
  v.toLowerCase(),
  v.transform((h) => h.replace(/\.$/, '')),
);

const list = v.optional(v.array(v.pipe(v.string(), v.trim(), v.toLowerCase(), v.minLength(1))));

export const routeSchema = v.pipe(
  v.strictObject({
    /** Which host the route serves; none: the gateway's own (PUBLIC_URL's). */
    host: v.optional(host),
    path: pathPrefix,
    origin,
    auth: v.picklist(['required', 'optional', 'public'], 'auth must be required, optional or public'),
    allow: v.optional(
      v.strictObject({
        emails: list,
        domains: list,
        roles: v.optional(v.array(v.pipe(v.string(), v.trim(), v.minLength(1)))),
        /** Provider groups (README "Groups"), compared exactly as the provider names them. */
        groups: v.optional(v.array(v.pipe(v.string(), v.trim(), v.minLength(1)))),
      }),
    ),
    /** README "Policy": allow and deny rules; checked and compiled by config/route-policies.ts (loaded on first use). */
    policy: v.optional(v.unknown()),
    /** "assertion": the origin also receives the assertion as `Authorization: Bearer` (replacing the client's). */
    upstream_authorization: v.optional(v.picklist(['assertion'], 'upstream_authorization must be "assertion"')),
    audience: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1))),
    strip_prefix: v.optional(v.boolean(), false),
    /** How long the origin may take to answer with headers before a 504. */
    timeout_seconds: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(300)), 30),
    /** "immediate": every request also asks the user's sessions object (storage/user-sessions.ts). */
    revocation: v.optional(v.picklist(['cached', 'immediate'], 'revocation must be cached or immediate'), 'cached'),
    /** Step-up (README "Second factors"): how the user must have signed in (token `amr`). */
    require: v.optional(v.pipe(v.array(v.picklist(['mfa', 'passkey'], 'require holds "mfa" and/or "passkey"')), v.minLength(1, 'require must name at least one of "mfa", "passkey"'))),
    /**
     * "mcp": the route is an OAuth protected resource (README "MCP servers"): RFC 9728 metadata,
     * 401 with `resource_metadata`, and only tokens issued for this resource (RFC 8707) pass.
     */
    resource: v.optional(v.picklist(['mcp'], 'resource must be "mcp"')),
    /** Step-up: the sign-in (token `auth_time`) may be at most this many seconds old. */
    /** README "Revocation": told when a gateway session ends (see `logoutNotify`). */
    logout_notify: v.optional(logoutNotify),
    max_auth_age: v.optional(v.pipe(v.number('max_auth_age must be a number of seconds'), v.integer('max_auth_age must be whole seconds'), v.minValue(60, 'max_auth_age must be at least 60'), v.maxValue(31_536_000, 'max_auth_age must be at most 31536000'))),
  }),
  // An allow list on an anonymous-friendly route would admit strangers and refuse members.
  v.check((r) => r.allow === undefined || r.auth === 'required', 'allow needs auth = "required"'),
  // The same holds for a policy: on an optional route anonymous requests would pass it unasked.
  v.check((r) => r.policy === undefined || r.auth === 'required', 'policy needs auth = "required"'),
  v.check((r) => r.policy === undefined || r.allow === undefined, 'use either allow (the shorthand) or policy, not both: write the allow list as policy.allow rules'),
  // A protected resource is for token holders only, and has one identifier (its URL): one exact
  // host, never the gateway itself (PUBLIC_URL, every session token's audience), nor under
  // /.well-known/ where its metadata is; grant tokens carry no groups, so a groups rule would
  // refuse everyone (proxy/resource-tokens.ts).
  v.check((r) => r.resource === undefined || r.auth === 'required', 'resource needs auth = "required"'),
  v.check((r) => r.resource === undefined || !r.host?.startsWith('*.'), 'a protected resource (resource = "mcp") needs one exact host, not a wildcard'),
  v.check((r) => r.resource === undefined || r.host !== undefined || r.path !== '/', 'a protected resource (resource = "mcp") on the gateway\'s host needs a path of its own: at / it would be the gateway itself'),
  v.check((r) => r.resource === undefined || !/^\/\.well-known(\/|$)/i.test(r.path), 'a protected resource (resource = "mcp") may not lie under /.well-known/, where its metadata is served'),
  v.check((r) => r.resource === undefined || !mentionsGroups([r.allow, r.policy]), 'a protected resource (resource = "mcp") cannot decide on groups, which the tokens of OAuth clients do not carry: decide on emails, domains or roles'),
  // A public route has no one to assert.
  v.check((r) => r.upstream_authorization === undefined || r.auth !== 'public', 'upstream_authorization needs auth = "required" or "optional"'),
  // Step-up only means something where a sign-in is required; elsewhere it would be skipped silently.
  v.check((r) => (r.require === undefined && r.max_auth_age === undefined) || r.auth === 'required', 'require and max_auth_age need auth = "required"'),
);

export const routesSchema = v.pipe(
  v.array(routeSchema, 'ROUTES must be a list of routes'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    // Compared as the route table compares them (util/fold-case.ts): `/class` and `/claß` are
    // one prefix to route matching, so two routes for it would leave one unreachable.
    const seen = new Map<string, number>();
    for (const [i, r] of dataset.value.entries()) {
      const key = `${r.host ?? ''} ${r.path.split('/').map(foldSegment).join('/')}`;
      const first = seen.get(key);
      if (first !== undefined) {
        const where = r.host === undefined ? `path ${r.path}` : `host ${r.host} and path ${r.path}`;
        addIssue({ message: `routes ${first} and ${i} have the same ${where} (paths are compared case-insensitively, with Unicode case folding)` });
        return;
      }
      seen.set(key, i);
    }
  }),
);

export type RouteConfig = v.InferOutput<typeof routeSchema>;

/**
 * The route's audience: `aud` of the assertion its origin receives (its `audience` setting, else
 * its origin's URL origin, or `service:NAME` for a binding). Never of its logout notices, whose
 * `aud` is their target: a notice must not pass for an assertion where `typ` goes unchecked.
 */
export function routeAudience(route: Pick<RouteConfig, 'audience' | 'origin'>): string {
  if (route.audience !== undefined) return route.audience;
  return serviceBinding(route.origin) === null ? new URL(route.origin).origin : route.origin;
}

/**
 * A logout notice's destination: where it goes (also the token's `aud`, so that it verifies only
 * where it was sent, and never as an assertion, whose `aud` is the route's audience), the route
 * it is for (for the audit).
 */
export interface LogoutNoticeTarget {
  target: string;
  route: string;
}

/**
 * Where a gateway session's end is told: each distinct `logout_notify` of the routes. Every
 * route with one, not only those the session used: tracking use would cost every proxied
 * request a write, and an origin ignores a `sid` it does not know. Once per routes.
 */
export const logoutNoticeTargets = memoize((routes: readonly RouteConfig[]): readonly LogoutNoticeTarget[] => {
  const byTarget = new Map<string, LogoutNoticeTarget>();
  for (const r of routes) {
    if (r.logout_notify === undefined || byTarget.has(r.logout_notify)) continue;
    byTarget.set(r.logout_notify, { target: r.logout_notify, route: `${r.host ?? ''}${r.path}` });
  }
  return [...byTarget.values()];
});

/** The binding and path of a `service:BINDING[/path]` notice target, or null for a URL. */
export function serviceTarget(target: string): { binding: string; path: string } | null {
  const m = SERVICE_TARGET.exec(target);
  return m ? { binding: m[1]!, path: m[2] ?? '/' } : null;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Whether the gateway sends logout tokens to this URL: https, or plain http to a loopback host
 * in development; never with a fragment (OpenID Connect Back-Channel Logout forbids one) or
 * credentials. The one rule for apps' back-channel logout URIs and origins' notice targets.
 */
export function logoutUriAllowed(uri: string, config: { isDevelopment: boolean }): boolean {
  if (!URL.canParse(uri)) return false;
  const url = new URL(uri);
  if (url.hash !== '' || uri.includes('#') || url.username !== '' || url.password !== '') return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && config.isDevelopment && LOOPBACK.has(url.hostname);
}

/** What is wrong with the routes' notice targets for this environment, or null. */
export function logoutNotifyProblem(routes: readonly RouteConfig[], config: { isDevelopment: boolean }): string | null {
  for (const [i, r] of routes.entries()) {
    const t = r.logout_notify;
    if (t !== undefined && serviceTarget(t) === null && !logoutUriAllowed(t, config)) return `route ${i}: logout_notify must use https (plain http only to localhost in development)`;
  }
  return null;
}

/** The binding name of a `service:BINDING` origin, or null for a URL origin. */
export function serviceBinding(origin: string): string | null {
  return SERVICE_ORIGIN.test(origin) ? origin.slice('service:'.length) : null;
}

/** True if a value (a route's `allow` or `policy`, at any depth) has a `groups` key with something in it. */
function mentionsGroups(value: unknown, depth = 0): boolean {
  if (depth > 32 || typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some((x) => mentionsGroups(x, depth + 1));
  return Object.entries(value).some(([key, x]) => (key === 'groups' && (!Array.isArray(x) || x.length > 0)) || mentionsGroups(x, depth + 1));
}

/**
 * True when some route decides on groups (its `allow` or `policy` names them): then group
 * membership must stay fresh (GitHub is asked for `read:org`, each session keeps its provider
 * grant to re-read them, a session whose groups cannot be re-read must sign in again). Read
 * generically, so any rule language that spells the fact `groups` counts.
 */
export function routesNeedGroups(routes: readonly object[]): boolean {
  return routes.some((r) => Object.entries(r).some(([key, x]) => (key === 'allow' || key === 'policy') && mentionsGroups(x)));
}
