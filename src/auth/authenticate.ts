/**
 * Who is asking: the presented access token and its full verification. Shared by the
 * `requireAuth()` middleware, the proxy and forward-auth gate, and sign-out.
 *
 * The token comes from `Authorization: Bearer` or the `__Host-gatehouse` cookie, never from
 * the URL. It must verify against our keys (pinned algorithm, `iss`, `aud`, required claims),
 * and its session `sid` must not be revoked (storage/revocation: this isolate's bounded cache,
 * then one KV key; every revocation ends a whole session, so no per-token key is needed).
 */
import type { Context } from 'hono';
import { logoutNoticeTargets } from '../config/routes-schema';
import type { AppEnv, AuthUser } from '../env';
import { recordEventInBackground } from './events';
import { readAccessCookie } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { isSessionRevoked } from '../storage/revocation';
import { findSession, type SessionStore } from '../storage/sessions';
import { findUserById, type User } from '../storage/users';
import { verifyAccessToken } from '../tokens/access-token';
import { nowSeconds } from '../util/time';

/** The groups of a token that carries none (shared: frozen, like the verified claims). */
const NO_GROUPS: readonly string[] = Object.freeze([]);

/** The presented token and where it came from, or null. Never looks at the query string. */
export function presentedToken(c: Context<AppEnv>): { token: string; via: 'bearer' | 'cookie' } | null {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
    if (!match) throw invalidToken('The Authorization header must be "Bearer <token>".');
    return { token: match[1]!, via: 'bearer' };
  }
  const cookie = readAccessCookie(c);
  return cookie ? { token: cookie, via: 'cookie' } : null;
}

/**
 * The user's sessions: their Durable Object (storage/user-sessions.ts), also the revocation
 * fence; with the routes' logout-notice targets (computed once per config), so every way a
 * session ends owes them their notice in the same transaction.
 */
export function sessionsOf(c: Context<AppEnv>, userId: string): SessionStore {
  return { ns: c.env.USER_SESSIONS, userId, notify: logoutNoticeTargets(c.get('config').ROUTES) };
}

/**
 * The request's origin when it is not the gateway's (PUBLIC_URL): an app host, whose own cookie
 * holds access tokens minted for its origin (auth/sign-in.ts `signInOnHost`). Such a token is
 * accepted on that origin alone: never on another host, nor on the gateway's endpoints. The
 * gateway's own requests are told apart without parsing the URL.
 */
export function hostAudience(c: Context<AppEnv>): string | undefined {
  const base = c.get('config').PUBLIC_URL;
  const url = c.req.url;
  if (url.startsWith(base) && (url.length === base.length || url[base.length] === '/')) return undefined;
  return new URL(url).origin;
}

/**
 * Verifies a token fully (signature, claims, revocation). Throws `invalid_token` or `unavailable`.
 * `immediate` (a route marked `revocation = "immediate"`): the user's sessions object is asked
 * too, on every request.
 */
export async function authenticate(c: Context<AppEnv>, token: string, immediate = false): Promise<AuthUser> {
  const config = c.get('config');
  const claims = await verifyAccessToken(
    { keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: config.accessTokenAudience, hostAudience: hostAudience(c) },
    token,
  );
  // The one revocation check of every path (proxy, forward-auth, gateway routes).
  if (await isSessionRevoked(c.env.REVOKED, claims.sid, {
      cacheSeconds: config.REVOCATION_CACHE_SECONDS,
      tokenExpiresAt: claims.exp,
      fence: immediate ? sessionsOf(c, claims.sub) : undefined,
    })) {
    recordEventInBackground(c, { event: 'revoked_token_presented', outcome: 'security', userId: claims.sub, detail: { sid: claims.sid } });
    throw invalidToken('The access token has been revoked.');
  }
  return {
    id: claims.sub,
    email: claims.email,
    emailVerified: claims.email_verified,
    roles: claims.roles,
    groups: claims.scim_groups === undefined ? (claims.groups ?? NO_GROUPS) : Object.freeze([...(claims.groups ?? []), ...claims.scim_groups]),
    groupsKnown: claims.groups !== undefined,
    scimGroupsKnown: claims.scim_groups !== undefined,
    sessionId: claims.sid,
    tokenId: claims.jti,
    tokenExpiresAt: claims.exp,
    issuedAt: claims.iat,
    amr: claims.amr,
    authTime: claims.auth_time,
  };
}

/**
 * The current record of `auth`'s user, while the account is enabled and the session is live in
 * its user's object. A token still passes `authenticate` where its session's revocation has not arrived yet
 * (another isolate's cached answer, KV's propagation): good enough to read, not to change how
 * the account is reached. A claim ends the squatter's sessions in the object before (and again
 * after) its D1 wipe, so a change that checks here cannot add a way in after the wipe.
 */
export async function liveSessionUser(c: Context<AppEnv>, auth: Pick<AuthUser, 'id' | 'sessionId'>): Promise<User> {
  const [user, session] = await Promise.all([findUserById(c.env.DB, auth.id), findSession(sessionsOf(c, auth.id), auth.sessionId)]);
  const live = session !== null && session.userId === auth.id && session.revokedAt === null && session.expiresAt > nowSeconds();
  if (!user || user.disabledAt !== null || !live) throw invalidToken('The session has ended.');
  return user;
}

/** The signed-in user's current record (after requireAuth()), as {@link liveSessionUser}. */
export async function currentUser(c: Context<AppEnv>): Promise<User> {
  return liveSessionUser(c, c.get('user'));
}

/**
 * The signed-in user of a request that does not require one (a mailed link's page and form):
 * no token, or one that no longer verifies (expired, revoked), is simply nobody.
 */
export async function signedInOrNobody(c: Context<AppEnv>): Promise<AuthUser | undefined> {
  try {
    const presented = presentedToken(c);
    return presented ? await authenticate(c, presented.token) : undefined;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_token') return undefined;
    throw e;
  }
}
