/**
 * Who calls a protected resource (a route with `resource = "mcp"`, README "MCP servers"): only
 * an OAuth client acting for a user, with a grant token issued for this resource. Its `aud`
 * must be the route's resource URL exactly (RFC 8707), so a token one MCP server received
 * cannot be replayed at another (the confused deputy of token passthrough). Session tokens and
 * cookies are refused: a browser attaches its cookie to any request a page makes, and an MCP
 * endpoint acts on what it is sent (CSRF). Every refusal is a 401 whose `WWW-Authenticate`
 * names the resource's metadata (RFC 9728 §5.1), never a redirect to the sign-in page: an MCP
 * client is a program, and finds its authorization server from there.
 *
 * A grant token carries no email, roles or groups: the route's policy and the origin's identity
 * headers read the user's current record (D1, through auth/directory-reads.ts), kept per isolate
 * for a few seconds. Groups are never known here: config/protected-resources.ts refuses a
 * resource route whose policy names them.
 */
import type { Context } from 'hono';
import type { AppEnv, AuthUser } from '../env';
import { ApiError, invalidToken } from '../http/errors';
import { authenticateGrantToken } from '../auth/grant-authenticate';
import { userForTokenClaims } from '../auth/directory-reads';
import { effectiveRoles } from '../auth/roles';
import type { Config } from '../config/schema';
import { resourceMetadataUrl, resourceUrl } from '../config/protected-resources';
import type { RouteConfig } from '../config/routes-schema';
import { nowSeconds } from '../util/time';
import type { CompiledRoute } from './route-table';

/** How long a user's record is reused for the tokens of their clients. */
export const RESOURCE_USER_CACHE_SECONDS = 30;
/** Bound on cached records per isolate; the oldest go first. */
const MAX_CACHED_USERS = 1000;

const NO_GROUPS: readonly string[] = Object.freeze([]);

/** The user's record as the directory gives it (or null: no such user). */
type User = NonNullable<Awaited<ReturnType<typeof userForTokenClaims>>>;

/** The headers a browser-based MCP client needs to read a refusal (its challenge above all). */
const REFUSAL_CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'WWW-Authenticate' };

interface Resource {
  url: string;
  metadataUrl: string;
}

const resources = new WeakMap<RouteConfig, Resource>();

/** The route's resource URL and its metadata URL, worked out once per route. */
export function resourceOf(config: Pick<Config, 'PUBLIC_URL'>, route: RouteConfig): Resource {
  let resource = resources.get(route);
  if (!resource) {
    const url = resourceUrl(route, config.PUBLIC_URL);
    resource = { url, metadataUrl: resourceMetadataUrl(url) };
    resources.set(route, resource);
  }
  return resource;
}

const users = new Map<string, { user: User | null; until: number }>();

/** The user's record, reused for {@link RESOURCE_USER_CACHE_SECONDS}. */
async function userRecord(c: Context<AppEnv>, userId: string, now: number): Promise<User | null> {
  const hit = users.get(userId);
  if (hit && hit.until > now) return hit.user;
  const user = await userForTokenClaims(c, userId);
  users.delete(userId);
  users.set(userId, { user, until: now + RESOURCE_USER_CACHE_SECONDS });
  if (users.size > MAX_CACHED_USERS) users.delete(users.keys().next().value!);
  return user;
}

/** The bearer token of the request, null without an Authorization header; a malformed one is refused. */
function bearerToken(c: Context<AppEnv>): string | null {
  const header = c.req.header('authorization');
  if (header === undefined) return null;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  if (!match) throw invalidToken('The Authorization header must be "Bearer <token>".');
  return match[1]!;
}

/** The user an OAuth client acts for, from a grant token for this resource; throws `invalid_token`. */
async function resourceCaller(c: Context<AppEnv>, route: CompiledRoute, resource: Resource, token: string): Promise<AuthUser> {
  const claims = await authenticateGrantToken(c, token, [resource.url], route.config.revocation === 'immediate');
  if (claims.svc === true) throw invalidToken('This resource takes tokens a client got for a user, not a service token.');
  const now = nowSeconds();
  const user = await userRecord(c, claims.sub, now);
  if (!user || user.disabledAt !== null) throw invalidToken('The account this token was issued for is not active.');
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerified,
    roles: effectiveRoles(user, c.get('config')),
    groups: NO_GROUPS,
    groupsKnown: false,
    sessionId: claims.sid,
    tokenId: claims.jti,
    tokenExpiresAt: claims.exp,
    issuedAt: claims.iat,
    amr: claims.amr ?? [],
    // Without a stated sign-in time, any `max_auth_age` finds it too old: fail closed.
    authTime: claims.auth_time ?? 0,
    clientId: claims.client_id,
  };
}

/** A refusal at a resource route, with the challenge that points to the resource's metadata. */
function challenged(e: unknown, resource: Resource, presented: boolean): unknown {
  if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403)) return e;
  const pointer = `resource_metadata="${resource.metadataUrl}"`;
  const own = e.extra.headers?.['www-authenticate'];
  let challenge: string | undefined;
  if (own !== undefined) challenge = `${own}, ${pointer}`;
  else if (e.status === 401) {
    // RFC 6750 §3.1: no error code when no token came, `invalid_token` when one was refused.
    challenge = presented ? `Bearer error="invalid_token", error_description="${e.description.replace(/["\\]/g, '')}", ${pointer}` : `Bearer ${pointer}`;
  }
  const headers = { ...e.extra.headers, ...REFUSAL_CORS, ...(challenge === undefined ? {} : { 'www-authenticate': challenge }) };
  return new ApiError(e.code, e.description, { ...e.extra, headers });
}

/**
 * The gate of a resource route: the caller from a grant token (never a cookie), then `admit`
 * (the route's policy, step-up and external decision, as for any route) with that user. Every
 * refusal carries the resource's challenge.
 */
export async function resourceGate<T>(c: Context<AppEnv>, route: CompiledRoute, admit: (user: AuthUser) => Promise<T>): Promise<T> {
  const resource = resourceOf(c.get('config'), route.config);
  let presented = c.req.header('authorization') !== undefined;
  try {
    const token = bearerToken(c);
    if (token === null) {
      presented = false;
      throw invalidToken('This is an OAuth protected resource: send an access token issued for it as a Bearer token (session cookies are not accepted here).');
    }
    return await admit(await resourceCaller(c, route, resource, token));
  } catch (e) {
    throw challenged(e, resource, presented);
  }
}
