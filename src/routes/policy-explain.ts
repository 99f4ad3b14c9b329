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
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { sessionsOf } from '../auth/authenticate';
import { directoryReads, userFromReplica } from '../auth/directory-reads';
import { recordEvent } from '../auth/events';
import { directoryGroups } from '../auth/directory-groups';
import { vouchedGroups } from '../auth/provider-groups';
import { effectiveRoles } from '../auth/roles';
import { routePolicies } from '../config/route-policies';
import type { AppEnv, AuthUser } from '../env';
import { readQuery } from '../http/body';
import { ApiError, badRequest } from '../http/errors';
import { normalisePath } from '../proxy/normalise-path';
import { callerOf, decide } from '../proxy/policy';
import { isUnder, matchRoute, requestHost, routeTable } from '../proxy/route-table';
import { stepUpNeed } from '../proxy/step-up';
import { listActiveSessions } from '../storage/sessions';
import { findUserByEmail, type User } from '../storage/users';
import { parseIp } from '../util/ip';
import { nowSeconds } from '../util/time';

const explainQuery = v.object({
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

function targetUrl(c: Context<AppEnv>, raw: string): URL {
  const base = c.get('config').PUBLIC_URL;
  if (!URL.canParse(raw, base)) throw badRequest('Query "url": is not a URL or a path.');
  const url = new URL(raw, base);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badRequest('Query "url": must be an http(s) URL or a path.');
  return url;
}

export const policyExplainRoute = new Hono<AppEnv>().get('/explain', async (c) => {
  const q = readQuery(c, explainQuery);
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

  const request = { method: q.method, url: url.href, ip: q.ip ?? null, country: q.country ?? null };
  // As the proxy decides: the host first (README "Hosts"), then the gateway's own paths, then ROUTES.
  const host = requestHost(config, url.host);
  if (host === 'unknown') return c.json({ request, route: null, decision: 'deny', rule: 'no route names this host (404)' });
  if (isUnder(path, config.AUTH_PREFIX)) {
    return c.json({ request, route: null, decision: 'not proxied', rule: 'the gateway\'s own endpoint' });
  }
  const match = matchRoute(routeTable(config.ROUTES), path, host);
  if (!match) return c.json({ request, route: null, decision: 'deny', rule: 'no route matches (404)' });
  const route = match.route;
  const routeView = { ...(route.config.host === undefined ? {} : { host: route.config.host }), path: route.config.path, auth: route.config.auth };
  if (route.config.auth === 'public') return c.json({ request, route: routeView, decision: 'allow', rule: 'public route' });
  if (user.disabledAt !== null) return c.json({ request, route: routeView, decision: 'deny', rule: 'the account is disabled' });

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
  const policy = (await routePolicies(config))?.get(route.config);
  const verdict = policy
    ? decide(policy, subject, { method: q.method, segments: path.segments.slice(route.prefix.length), ip: q.ip ?? null, country: q.country ?? null, now })
    : { allowed: true, rule: 'no policy: any signed-in user' };
  const stepUp = verdict.allowed ? stepUpNeed(route.config, subject, now) : null;
  return c.json({
    request,
    route: routeView,
    identity,
    decision: verdict.allowed ? 'allow' : 'deny',
    rule: verdict.rule,
    step_up: stepUp ? { missing: stepUp.missing, max_age: stepUp.maxAge ?? null } : null,
    external: policy?.external && verdict.allowed ? { binding: policy.external, asked: false } : null,
  });
});
