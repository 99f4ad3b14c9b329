/**
 * `GET /admin/explain?user=&url=&method=&ip=&country=&groups=`: which route a request would
 * match and which policy rule would allow or refuse it (README "Policy"), for an admin (mounted
 * under adminRoutes, which admits only current admins).
 *
 * Evaluated with the user's current directory record (verified address, roles as a refresh
 * would put them into a token) and their most recently used live session's `amr` and sign-in
 * time and groups as a token minted now would carry them (none: never signed in, or groups
 * GROUPS_MAX_AGE old), unless `groups` (comma-separated) is given to try others; the answer says which.
 * The external decision is not asked (its answer depends on the live request); the answer says
 * whether the route would ask it.
 *
 * {@link explainRequest} is the explainer's one home: the console's "who can reach this?" form
 * (routes/console-routes.ts) calls it too.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { sessionsOf } from '../auth/authenticate';
import { directoryReads, userFromReplica } from '../auth/directory-reads';
import { recordEvent } from '../auth/events';
import { directoryGroups } from '../auth/directory-groups';
import { vouchedGroups } from '../auth/provider-groups';
import { effectiveRoles } from '../auth/roles';
import { resourceUrl } from '../config/protected-resources';
import { routePolicies } from '../config/route-policies';
import type { AppEnv, AuthUser } from '../env';
import { readQuery } from '../http/body';
import { ApiError, badRequest } from '../http/errors';
import type { Policy } from '../config/policy';
import type { RouteConfig } from '../config/routes-schema';
import { normalisePath } from '../proxy/normalise-path';
import { methodOverride } from '../proxy/gate';
import { callerOf, decide } from '../proxy/policy';
import { REFUSED_METHODS } from '../middleware/refuse-methods';
import { isUnder, matchRoute, requestHost, routeTable } from '../proxy/route-table';
import { stepUpNeed } from '../proxy/step-up';
import { listActiveSessions } from '../storage/sessions';
import { findUserByEmail, type User } from '../storage/users';
import { parseIp } from '../util/ip';
import { nowSeconds } from '../util/time';

/** The question: a user (id or email), a URL (or a path on PUBLIC_URL), and optionally the method, client address, country and groups. */
export const explainQuery = v.object({
  user: v.pipe(v.string('is required (a user id or email address)'), v.trim(), v.minLength(1, 'is required (a user id or email address)'), v.maxLength(254, 'is too long')),
  url: v.pipe(v.string('is required (the URL to explain)'), v.trim(), v.minLength(1, 'is required (the URL to explain)'), v.maxLength(2048, 'is too long')),
  method: v.optional(v.pipe(v.string(), v.trim(), v.toUpperCase(), v.regex(/^[!#$%&'*+.^_`|~0-9A-Z-]{1,32}$/, 'is not an HTTP method')), 'GET'),
  ip: v.optional(v.pipe(v.string(), v.trim(), v.check((s) => parseIp(s) !== null, 'is not an IPv4 or IPv6 address'))),
  country: v.optional(v.pipe(v.string(), v.trim(), v.toUpperCase(), v.regex(/^(?:[A-Z]{2}|T1)$/, 'is not a two-letter country code'))),
  groups: v.optional(v.pipe(v.string(), v.maxLength(2048, 'is too long'), v.transform((s) => s.split(',').map((g) => g.trim()).filter(Boolean)))),
});

async function userNamed(c: Context<AppEnv>, named: string): Promise<User> {
  const user = named.includes('@') ? await findUserByEmail(c.env.DB, named) : named.length <= 64 ? await userFromReplica(c, named) : null;
  if (!user) throw new ApiError('not_found', 'No such user.');
  return user;
}

/** The rules that decide without a policy (the others are a policy's rule labels, proxy/policy.ts). */
export const NO_HOST = 'no route names this host (404)';
export const OWN_ENDPOINT = "the gateway's own endpoint";
export const NO_ROUTE = 'no route matches (404)';
export const PUBLIC_ROUTE = 'public route';
export const DISABLED = 'the account is disabled';
export const NO_POLICY = 'no policy: any signed-in user';
export const REFUSED_METHOD = 'the gateway refuses this method on every path (405)';

function targetUrl(c: Context<AppEnv>, raw: string): URL {
  const base = c.get('config').PUBLIC_URL;
  if (!URL.canParse(raw, base)) throw badRequest('Query "url": is not a URL or a path.');
  const url = new URL(raw, base);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badRequest('Query "url": must be an http(s) URL or a path.');
  return url;
}

/** What the explainer answers: the JSON API's body, and the route's configuration for the console's words. */
export interface Explanation {
  answer: {
    /** `method_override`: the URL's `_method` parameter that names another method, so the policy sees the method as unknown (as the proxy does). */
    request: { method: string; method_override: string | null; url: string; ip: string | null; country: string | null };
    route: { host?: string; path: string; auth: RouteConfig['auth'] } | null;
    identity?: {
      caller: string;
      email: string;
      email_verified: boolean;
      roles: readonly string[];
      groups: readonly string[];
      groups_from: string;
      session: { id: string; last_used_at: number; amr: readonly string[]; auth_time: number } | null;
    };
    decision: 'allow' | 'deny' | 'not proxied';
    rule: string;
    step_up?: { missing: readonly string[]; max_age: number | null } | null;
    external?: { binding: string; asked: false } | null;
    /**
     * A protected resource's URL (the route has `resource`): there only an OAuth client's token
     * for it passes, never the user's own session (401), and a `client` rule is decided as for no client.
     */
    resource?: string | null;
  };
  /** The matched route's configuration (null: none matched), and its compiled policy (null: none). */
  route: RouteConfig | null;
  policy: Policy | null;
  /** The user the request was decided for. */
  user: User;
}

export type ExplainQuery = v.InferOutput<typeof explainQuery>;

/**
 * The one home of "who can reach this?": the JSON API's `GET /admin/explain` and the console's
 * explainer both answer with it. It decides with the proxy's own code (proxy/route-table.ts,
 * proxy/policy.ts `decide`, proxy/step-up.ts), in the proxy's order, so it cannot drift from the
 * real decision. Throws `not_found` for an unknown user and `invalid_request` for a URL the
 * gateway would not serve. The question is audited.
 */
export async function explainRequest(c: Context<AppEnv>, q: ExplainQuery): Promise<Explanation> {
  const config = c.get('config');
  const user = await userNamed(c, q.user);
  const url = targetUrl(c, q.url);
  let path;
  try {
    path = normalisePath(url.pathname);
  } catch {
    throw badRequest('Query "url": the path is not one the gateway would serve.');
  }
  await recordEvent(c, { event: 'admin_policy_explained', outcome: 'success', userId: user.id, detail: { admin: c.get('user').id, path: url.pathname.slice(0, 200), method: q.method } });

  const override = methodOverride(q.method, url.searchParams.getAll('_method')) ?? null;
  const request = { method: q.method, method_override: override, url: url.href, ip: q.ip ?? null, country: q.country ?? null };
  const none = { route: null, policy: null, user };
  // Answered before anything else runs (middleware/refuse-methods.ts), on every host and path.
  if (REFUSED_METHODS.has(q.method)) return { ...none, answer: { request, route: null, decision: 'deny', rule: REFUSED_METHOD } };
  // As the proxy decides: the host first (README "Hosts"), then the gateway's own paths, then ROUTES.
  const host = requestHost(config, url.host);
  if (host === 'unknown') return { ...none, answer: { request, route: null, decision: 'deny', rule: NO_HOST } };
  if (isUnder(path, config.AUTH_PREFIX)) {
    return { ...none, answer: { request, route: null, decision: 'not proxied', rule: OWN_ENDPOINT } };
  }
  const match = matchRoute(routeTable(config.ROUTES), path, host);
  if (!match) return { ...none, answer: { request, route: null, decision: 'deny', rule: NO_ROUTE } };
  const route = match.route;
  const routeView = { ...(route.config.host === undefined ? {} : { host: route.config.host }), path: route.config.path, auth: route.config.auth };
  const policy = (await routePolicies(config))?.get(route.config) ?? null;
  const found = { route: route.config, policy, user };
  if (route.config.auth === 'public') return { ...found, answer: { request, route: routeView, decision: 'allow', rule: PUBLIC_ROUTE } };
  if (user.disabledAt !== null) return { ...found, answer: { request, route: routeView, decision: 'deny', rule: DISABLED } };

  const now = nowSeconds();
  const sessions = await listActiveSessions(sessionsOf(c, user.id), now);
  const last = sessions.reduce<(typeof sessions)[number] | null>((a, s) => (a === null || s.lastUsedAt > a.lastUsedAt ? s : a), null);
  // Null: nobody vouches for the session's groups (not "in none": a rule denying a group refuses).
  const groups = q.groups ?? (last ? vouchedGroups(config, last, now) : null);
  // The directory's groups (SCIM), as a token minted now would carry them; given groups replace both.
  const directory = q.groups === undefined ? await directoryGroups(c, user) : null;
  const subject: AuthUser = {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerified,
    roles: effectiveRoles(user, config),
    groups: [...(groups ?? []), ...(directory ?? [])],
    groupsKnown: groups !== null,
    scimGroupsKnown: q.groups !== undefined || directory !== null,
    sessionId: last?.id ?? '',
    tokenId: '',
    tokenExpiresAt: 0,
    issuedAt: now,
    amr: last?.amr ?? [],
    authTime: last?.authTime ?? 0,
  };
  const identity = {
    caller: callerOf(subject),
    email: subject.email,
    email_verified: subject.emailVerified,
    roles: subject.roles,
    groups: subject.groups,
    groups_from:
      q.groups !== undefined
        ? 'the groups parameter'
        : groups !== null
          ? 'the last used session'
          : last
            ? 'unknown (the last used session has no provider groups, or they are too old: a rule denying a group refuses; pass groups= to try some)'
            : 'unknown (no live session; pass groups= to try some)',
    session: last ? { id: last.id, last_used_at: last.lastUsedAt, amr: last.amr, auth_time: last.authTime } : null,
  };
  const verdict = policy
    ? decide(policy, subject, { method: override === null ? q.method : null, segments: path.segments.slice(route.prefix.length), ip: q.ip ?? null, country: q.country ?? null, now })
    : { allowed: true, rule: NO_POLICY };
  const stepUp = verdict.allowed ? stepUpNeed(route.config, subject, now) : null;
  return {
    ...found,
    answer: {
      request,
      route: routeView,
      identity,
      decision: verdict.allowed ? 'allow' : 'deny',
      rule: verdict.rule,
      step_up: stepUp ? { missing: stepUp.missing, max_age: stepUp.maxAge ?? null } : null,
      external: policy?.external && verdict.allowed ? { binding: policy.external, asked: false } : null,
      resource: route.config.resource === undefined ? null : resourceUrl(route.config, config.PUBLIC_URL),
    },
  };
}

export const policyExplainRoute = new Hono<AppEnv>().get('/explain', async (c) => c.json((await explainRequest(c, readQuery(c, explainQuery))).answer));
