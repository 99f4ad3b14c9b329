/**
 * Session lifecycle after the start (which is auth/sign-in.ts's alone): step-up, refresh (rotate,
 * with reuse detection), and end. Every session lives in its user's Durable Object
 * (storage/user-sessions.ts): it rotates, detects reuse and fences in one place; KV then spreads
 * an ending to every location's verifications.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { readAccessCookie, REFRESH_COOKIE } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { revokeSessionIds } from '../storage/revocation';
import {
  endAllSessionsIn,
  endSessionsIn,
  findSession,
  findSessionByRefreshHash,
  legacyRefreshOwner,
  rotateRefreshToken,
  updateSessionAuth,
  type Session,
} from '../storage/sessions';
import type { User } from '../storage/users';
import { decodeJwt } from 'jose/jwt/decode';
import { ExpiredTokenError, issueAccessToken, verifyAccessToken, verifyAccessTokenUncached, type AccessClaims } from '../tokens/access-token';
import { randomId, sha256 } from '../util/random';
import { CLOCK_TOLERANCE_S, nowSeconds as now } from '../util/time';
import { hostAudience, sessionsOf } from './authenticate';
import { userForTokenClaims, userFromReplica } from './directory-reads';
import { recordEvent } from './events';
import { directoryGroups } from './directory-groups';
import { rereadStaleGroups, vouchedGroups } from './provider-groups';
import { effectiveRoles } from './roles';

export interface IssuedTokens {
  accessToken: string;
  accessTokenId: string;
  expiresIn: number;
  refreshToken: string;
  /** When the refresh token (and so the cookies) expire, Unix seconds. */
  sessionExpiresAt: number;
  session: Session;
}

/**
 * A refresh token: `<user id>.<secret>`, the secret 256 random bits (base64url). The user id
 * names the object that holds the session, so a refresh reaches it without a D1 lookup; only
 * the secret's SHA-256 is stored, and only that object's sessions are compared with it, so a
 * user id paired with anything but one of that user's current secrets is refused like any bad
 * token. The id tells the holder nothing new: the access token beside it carries it as `sub`.
 */
export interface RefreshToken {
  token: string;
  /** SHA-256 of the secret part: what the object stores. */
  hash: string;
}

export async function newRefreshToken(userId: string): Promise<RefreshToken> {
  const secret = randomId(32);
  return { token: `${userId}.${secret}`, hash: await sha256(secret) };
}

/** The shape of every refresh token issued now: a user id, a dot, 43 base64url characters. */
const ROUTED_REFRESH_TOKEN = /^(usr_[A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/;
/** The shape earlier versions issued (their sessions are in D1 until their next refresh). */
const LEGACY_REFRESH_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * Which object a refresh token names, and the hash to look for there. A token of the old shape
 * finds its user through D1 (once: its refresh moves it). Null for a malformed, truncated or
 * foreign token, and for an old one D1 does not know: no object is touched.
 */
async function locateRefreshToken(c: Context<AppEnv>, token: string): Promise<{ userId: string; hash: string; legacy: boolean } | null> {
  const routed = ROUTED_REFRESH_TOKEN.exec(token);
  if (routed) return { userId: routed[1]!, hash: await sha256(routed[2]!), legacy: false };
  if (!LEGACY_REFRESH_TOKEN.test(token)) return null;
  const hash = await sha256(token);
  const userId = await legacyRefreshOwner(c.env.DB, hash);
  return userId === null ? null : { userId, hash, legacy: true };
}

/**
 * Seconds during which a just-rotated refresh token may be presented again without counting as
 * theft: two tabs (or a tab and a retry) refreshing with the same cookie at once. The late one
 * gets `conflict` and ends nothing; the winner's response has already set the new cookies.
 */
export const REFRESH_REUSE_GRACE_S = 10;

/** The refusal for a refresh token a concurrent request has just rotated. */
const justRotated = () =>
  new ApiError('conflict', 'This refresh token was just used by another request, which received the new tokens. Use those (a browser already has them).');

/**
 * An access token for the session, which never outlives it: `exp` is at most the session's
 * absolute end (`created_at + SESSION_MAX_AGE`) and its refresh token's expiry (`expiresAt`,
 * as the session now stands). So once a session is past its end none of its tokens verifies,
 * and ending a user's sessions need only revoke those whose `expires_at` is not yet past.
 */
export async function accessTokenFor(
  c: Context<AppEnv>,
  user: User,
  session: Pick<Session, 'id' | 'amr' | 'authTime' | 'createdAt' | 'expiresAt' | 'groups' | 'groupsReadAt'>,
  /** An app host's origin, for its own cookie (auth/sign-in.ts `signInOnHost`); default the gateway's. */
  audience?: string,
) {
  const config = c.get('config');
  return issueAccessToken(
    { keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: audience ?? config.accessTokenAudience },
    {
      userId: user.id,
      sessionId: session.id,
      email: user.email,
      emailVerified: user.emailVerified,
      roles: effectiveRoles(user, config),
      groups: vouchedGroups(config, session),
      scimGroups: await directoryGroups(c, user),
      amr: session.amr,
      authTime: session.authTime,
      ttlSeconds: config.ACCESS_TOKEN_TTL,
      notAfter: Math.min(session.createdAt + config.SESSION_MAX_AGE, session.expiresAt),
    },
  );
}

/**
 * A step-up: the user of a live session authenticated again, now, with `amr` (which replaces
 * the session's). Returns a new access token carrying it; the refresh token is unchanged, and
 * later refreshes keep the new `amr` and `auth_time`. Refused if the session has ended, also by
 * its absolute end under the current SESSION_MAX_AGE (as a refresh is).
 */
export async function stepUpSession(c: Context<AppEnv>, user: User, sessionId: string, amr: readonly string[]) {
  const t = now();
  const span = await updateSessionAuth(sessionsOf(c, user.id), sessionId, [...amr], t, c.get('config').SESSION_MAX_AGE);
  if (!span) throw invalidToken('The session has ended. Sign in again.');
  const access = await accessTokenFor(c, user, { id: sessionId, amr: [...amr], authTime: t, ...span });
  return { accessToken: access.token, expiresIn: access.expiresIn, authTime: t };
}

/**
 * How long after a session ended one of its access tokens may still verify (lifetime plus
 * clock tolerance): for that long, ending it again must still revoke it in KV.
 */
export function tokenLifetime(c: Context<AppEnv>): number {
  return c.get('config').ACCESS_TOKEN_TTL + CLOCK_TOLERANCE_S;
}

/**
 * Ends sessions of `userId`: in the user's object first (which is also the fence: a failure
 * there is a 503 with nothing done), then their access tokens in KV, also for sessions the
 * object already shows as ended: a retry after a failed KV write completes the job. Returns how
 * many sessions this call ended.
 */
export async function endSessions(c: Context<AppEnv>, userId: string, sessionIds: string[]): Promise<number> {
  const ended = await endSessionsIn(sessionsOf(c, userId), sessionIds, now());
  await revokeSessionIds(c.env.REVOKED, sessionIds, c.get('config').ACCESS_TOKEN_TTL);
  return ended.length;
}

/**
 * Ends one session of `userId`, idempotently: a live one, or one that ended so recently that
 * its access tokens may still verify (it is revoked in KV again: the retry of an attempt
 * whose KV write failed). False when there is nothing (left) to end.
 */
export async function endSession(c: Context<AppEnv>, sessionId: string, userId: string): Promise<boolean> {
  const session = await findSession(sessionsOf(c, userId), sessionId);
  if (!session || session.userId !== userId) return false;
  if (session.revokedAt !== null && session.revokedAt < now() - tokenLifetime(c)) return false;
  await endSessions(c, userId, [session.id]);
  return true;
}

/**
 * Ends every session of a user: in the object first (one transaction), then KV for every
 * session whose access tokens may still verify: those this call ended, those ended within the
 * longest access-token lifetime (so a retry after a failed KV write also covers the sessions
 * the failed attempt already ended), and those that ran out just now (a token refreshed just
 * before its session's end lives until that end, plus clock tolerance). `callerSessionId`, the
 * session making the request, is revoked in KV last, once the others are: until then its token
 * still works for that retry. Returns the ids this call ended.
 */
export async function endAllSessions(c: Context<AppEnv>, userId: string, callerSessionId?: string): Promise<string[]> {
  const { ended, withLiveTokens } = await endAllSessionsIn(sessionsOf(c, userId), now(), tokenLifetime(c));
  const ttl = c.get('config').ACCESS_TOKEN_TTL;
  await revokeSessionIds(c.env.REVOKED, withLiveTokens.filter((id) => id !== callerSessionId), ttl);
  if (callerSessionId !== undefined) await revokeSessionIds(c.env.REVOKED, [callerSessionId], ttl);
  return ended;
}

export interface SignOutResult {
  userId: string | null;
  sessionId: string | null;
  /** Sessions this call ended (0 when there was nothing, or nothing left, to end). */
  ended: number;
}

/**
 * Sign-out, idempotent: it ends what the request proves, and otherwise still succeeds.
 * - An unexpired access token of ours ends its session, even when already revoked: that is
 *   the retry of a sign-out that failed part-way, and it finishes the job (the object, then
 *   KV; both idempotent). A revoked token's session is ending anyway.
 * - Otherwise (no access token, an expired one, an unusable cookie) the refresh token names
 *   the session.
 * - With neither, nothing ends.
 * A bearer token that is not ours at all (bad signature, malformed) is still refused.
 */
export async function signOut(
  c: Context<AppEnv>,
  presented: { token: string; via: 'bearer' | 'cookie' } | null,
  refreshToken: string | undefined,
): Promise<SignOutResult> {
  const claims = presented ? await signOutClaims(c, presented) : null;
  if (claims) return { userId: claims.sub, sessionId: claims.sid, ended: await endSessions(c, claims.sub, [claims.sid]) };
  const session = refreshToken ? await sessionForRefreshToken(c, refreshToken) : null;
  if (!session) return { userId: null, sessionId: null, ended: 0 };
  return { userId: session.userId, sessionId: session.id, ended: await endSessions(c, session.userId, [session.id]) };
}

/** The claims of a token we signed and that has not expired (revoked or not), or null if it names nothing to end. */
async function signOutClaims(c: Context<AppEnv>, presented: { token: string; via: 'bearer' | 'cookie' }): Promise<AccessClaims | null> {
  const config = c.get('config');
  try {
    return await verifyAccessToken({ keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: config.accessTokenAudience, hostAudience: hostAudience(c) }, presented.token);
  } catch (e) {
    // A browser's access cookie may be anything stale (expired, signed by a retired key): the
    // refresh cookie decides. A bearer token must at least be ours.
    const stale = e instanceof ExpiredTokenError || (presented.via === 'cookie' && e instanceof ApiError && e.code === 'invalid_token');
    if (stale) return null;
    throw e;
  }
}

/**
 * Sign-out on an app host (routes/host-sign-in.ts), whose only credential is its access cookie:
 * the session that cookie's token names ends, on every host, also when the token's lifetime is
 * over (the page was open a while), as long as it is ours: its signature and claims are checked
 * as they stood at its expiry. Anything else ends nothing.
 */
export async function signOutWithAccessToken(c: Context<AppEnv>, token: string | undefined): Promise<SignOutResult> {
  const none = { userId: null, sessionId: null, ended: 0 };
  if (token === undefined) return none;
  const config = c.get('config');
  const ctx = { keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: config.accessTokenAudience, hostAudience: hostAudience(c) };
  let claims: AccessClaims;
  try {
    claims = await verifyAccessToken(ctx, token);
  } catch (e) {
    if (!(e instanceof ExpiredTokenError)) return none;
    let exp: unknown;
    try {
      exp = decodeJwt(token).exp;
    } catch {
      return none;
    }
    if (typeof exp !== 'number') return none;
    try {
      claims = await verifyAccessTokenUncached(ctx, token, exp - 1);
    } catch {
      return none;
    }
  }
  return { userId: claims.sub, sessionId: claims.sid, ended: await endSessions(c, claims.sub, [claims.sid]) };
}

/** The live session a refresh token belongs to, or null (no side effects). */
export async function sessionForRefreshToken(c: Context<AppEnv>, refreshToken: string): Promise<Session | null> {
  const located = await locateRefreshToken(c, refreshToken);
  if (!located) return null;
  // A routing part anyone can write: one naming no account must not reach (create) an object.
  if (!located.legacy && (await userFromReplica(c, located.userId)) === null) return null;
  const session = await findSessionByRefreshHash(sessionsOf(c, located.userId), located.hash);
  if (!session || session.revokedAt !== null || session.expiresAt <= now()) return null;
  return session;
}

/**
 * Rotates a refresh token, in its user's object (one transaction: of concurrent rotations of
 * one token exactly one wins). A token that was already rotated is treated as stolen: its whole
 * session ends and a security event is recorded, unless it was rotated less than
 * {@link REFRESH_REUSE_GRACE_S} ago and its session is live (two tabs at once): then, as for
 * the losers of concurrent rotations, the answer is `conflict` and nothing ends. A token of the
 * old shape keeps its session's D1 row until that expires (housekeeping): the row is what routes
 * the token, once rotated, to the object again, where a second use is a conflict or a reuse.
 * A session whose provider groups are GROUPS_MAX_AGE old has them re-read before it rotates
 * (auth/provider-groups.ts): a refusal there leaves the presented token as it was.
 */
export async function refreshSession(
  c: Context<AppEnv>,
  refreshToken: string,
  /** A browser's session as its access cookie names it: the token must be of that one (see {@link refreshBrowserSession}). */
  browser?: BrowserSession,
): Promise<{ user: User; tokens: IssuedTokens }> {
  const config = c.get('config');
  const refused = invalidToken('The refresh token is invalid, expired or revoked.');
  const located = await locateRefreshToken(c, refreshToken);
  if (!located) throw refused;
  const { userId } = located;
  // Another account's token beside this browser's access cookie: refused before its object is reached.
  if (browser && userId !== browser.userId) throw await cookiesDisagree(c, browser, { refreshUser: userId });
  const store = sessionsOf(c, userId);
  // The directory first: if D1 cannot answer (503), nothing has been rotated and the token still works.
  // A replica's copy is enough for the claims unless it grants a role (then the primary's):
  // disabling ends the session in the object, which decides.
  const user = await userForTokenClaims(c, userId);
  // No such account (made up, or deleted): refused before its object is reached, and so created.
  if (!user) throw refused;
  const next = await newRefreshToken(userId);
  const t = now();
  const rotation = { hash: located.hash, newHash: next.hash, now: t, refreshTtl: config.REFRESH_TOKEN_TTL, maxAge: config.SESSION_MAX_AGE, grace: REFRESH_REUSE_GRACE_S, sessionId: browser?.sessionId };
  let outcome = await rotateRefreshToken(store, { ...rotation, groupsMaxAge: config.GROUPS_MAX_AGE });
  if (outcome.kind === 'stale_groups') {
    // Re-read before rotating: a refusal here leaves the presented refresh token as it was.
    if (user.disabledAt === null) await rereadStaleGroups(c, userId, outcome.session);
    outcome = await rotateRefreshToken(store, { ...rotation, groupsMaxAge: null });
  }
  if (outcome.kind === 'other_session') throw await cookiesDisagree(c, browser ?? null, { refreshUser: userId });
  if (outcome.kind === 'invalid' || outcome.kind === 'stale_groups') throw refused;
  if (outcome.kind === 'conflict') throw justRotated();
  if (outcome.kind === 'reused') {
    // The object has ended the session; its access tokens go in KV.
    await revokeSessionIds(c.env.REVOKED, [outcome.sessionId], config.ACCESS_TOKEN_TTL);
    await recordEvent(c, {
      event: 'refresh_token_reuse',
      outcome: 'security',
      userId,
      detail: { sid: outcome.sessionId, message: 'A rotated refresh token was presented again; the session was ended.' },
    });
    throw refused;
  }
  const { session } = outcome;
  if (user.disabledAt !== null) {
    await endSessions(c, userId, [session.id]);
    throw refused;
  }
  const access = await accessTokenFor(c, user, session);
  await recordEvent(c, { event: 'refresh', outcome: 'success', userId: user.id, detail: { sid: session.id } });
  return {
    user,
    tokens: {
      accessToken: access.token,
      accessTokenId: access.jti,
      expiresIn: access.expiresIn,
      refreshToken: next.token,
      sessionExpiresAt: session.expiresAt,
      session,
    },
  };
}

/** The session a browser's access cookie names: the one its refresh cookie may rotate. */
export interface BrowserSession {
  userId: string;
  sessionId: string;
}

/**
 * The `sub` and `sid` of a browser's access cookie, or null when it has none or they cannot be
 * read. Its signature is not checked, and it may have expired: `__Host-` already means only the
 * gateway's host can have set it (no sibling host can, unlike the `__Secure-` refresh cookie),
 * and whoever could write it there could as well write a validly signed token of their own
 * account. A check would only refuse browsers whose cookie a retired signing key signed (README
 * "Rotating signing keys"), which are to refresh like any other.
 */
function browserSessionOf(accessCookie: string | undefined): BrowserSession | null {
  if (accessCookie === undefined) return null;
  let claims: { sub?: unknown; sid?: unknown };
  try {
    claims = decodeJwt(accessCookie);
  } catch {
    return null;
  }
  const { sub, sid } = claims;
  if (typeof sub !== 'string' || sub === '' || typeof sid !== 'string' || sid === '') return null;
  return { userId: sub, sessionId: sid };
}

/** Records a browser whose cookies disagree (one was planted) and returns the refusal to throw. */
async function cookiesDisagree(c: Context<AppEnv>, browser: BrowserSession | null, detail: { refreshUser?: string; refreshCookies?: number }): Promise<ApiError> {
  await recordEvent(c, {
    event: 'refresh_cookie_mismatch',
    outcome: 'security',
    userId: browser?.userId ?? null,
    detail: {
      sid: browser?.sessionId ?? null,
      ...(detail.refreshUser !== undefined ? { refresh_user: detail.refreshUser } : {}),
      ...(detail.refreshCookies !== undefined ? { refresh_cookies: detail.refreshCookies } : {}),
      message: 'A refresh cookie that is not this browser\'s own was presented (planted by a sibling host?); nothing was refreshed.',
    },
  });
  return invalidToken('The refresh cookie does not belong to this browser\'s session. Sign in again.');
}

/**
 * How many refresh cookies the `Cookie` header carries. The gateway sets one; `__Secure-`
 * allows `Domain=`, so a page on a sibling host (`wiki.example.com` beside `auth.example.com`)
 * can add its own for the whole registrable domain, and a browser sends both (the longer path
 * first, which is the one http/cookies.ts `readRefreshCookie` returns). Counted on the raw header, also
 * across `,` (two `Cookie` headers joined), so a second one is never missed: more than one is
 * refused ({@link refreshBrowserSession}). Here rather than in http/cookies.ts, which is on
 * the start-up path: only a refresh needs it.
 */
function refreshCookieCount(c: Context<AppEnv>): number {
  const header = c.req.header('cookie');
  if (header === undefined) return 0;
  let count = 0;
  for (const pair of header.split(/[;,]/)) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === REFRESH_COOKIE) count++;
  }
  return count;
}

/**
 * A browser's refresh (cookie mode: `GET` and `POST /auth/refresh`). The refresh cookie is
 * `__Secure-`, which a page on a sibling host under the same registrable domain can set with
 * `Domain=` (README "Hosts"): its own refresh token, planted to sign this browser into its
 * account (login CSRF). So the refresh cookie is used only
 * - when it is the only one the request carries (a second can only have been planted), and
 * - beside the `__Host-gatehouse` access cookie (which no sibling can set; the gateway sets and
 *   clears both together, with the same lifetime), only for the user and session that cookie
 *   names (checked in the user's object, in the rotation's own transaction).
 * Anything else is `invalid_token` and nothing is rotated or ended; cookies that disagree are
 * also a `refresh_cookie_mismatch` security event (a missing access cookie is not: a browser
 * that lost it is merely signed out). A token-mode client sends its token in the body instead
 * and is not concerned: no page can make a browser do that.
 */
export async function refreshBrowserSession(c: Context<AppEnv>, refreshCookie: string): Promise<{ user: User; tokens: IssuedTokens }> {
  const browser = browserSessionOf(readAccessCookie(c));
  const count = refreshCookieCount(c);
  if (count > 1) throw await cookiesDisagree(c, browser, { refreshCookies: count });
  if (!browser) throw invalidToken('The refresh cookie is used only beside this browser\'s access cookie, which is missing or unreadable. Sign in again.');
  return refreshSession(c, refreshCookie, browser);
}
