/**
 * Session lifecycle after the start (which is auth/sign-in.ts's alone): step-up, refresh (rotate,
 * with reuse detection), and end (revoke in D1 and KV).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, invalidToken } from '../http/errors';
import { fenceSessionIds, isFenced, revokeSessionIds } from '../storage/revocation';
import {
  findRotatedToken,
  findSessionById,
  findSessionByRefreshHash,
  revokeSession,
  revokeUserSessions,
  rotateRefreshHash,
  sessionIdsWithLiveTokens,
  updateSessionAuth,
  type Session,
} from '../storage/sessions';
import { findUserById, type User } from '../storage/users';
import { ExpiredTokenError, issueAccessToken, verifyAccessToken, type AccessClaims } from '../tokens/access-token';
import { randomId, sha256 } from '../util/random';
import { CLOCK_TOLERANCE_S, nowSeconds as now } from '../util/time';
import { fenceOf } from './authenticate';
import { recordEvent } from './events';
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

/** 256 random bits, base64url: opaque to everyone, stored only as its SHA-256. */
export function newRefreshToken(): string {
  return randomId(32);
}

const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

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
export async function accessTokenFor(c: Context<AppEnv>, user: User, session: Pick<Session, 'id' | 'amr' | 'authTime' | 'createdAt' | 'expiresAt'>) {
  const config = c.get('config');
  return issueAccessToken(
    { keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: config.accessTokenAudience },
    {
      userId: user.id,
      sessionId: session.id,
      email: user.email,
      emailVerified: user.emailVerified,
      roles: effectiveRoles(user, config),
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
  const span = await updateSessionAuth(c.env.DB, sessionId, [...amr], t, c.get('config').SESSION_MAX_AGE);
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
 * With the `REVOCATION_FENCE` binding: writes the sessions to the user's fence. Every revocation
 * does this FIRST (before D1 and KV), so a failure (503) leaves nothing half done.
 */
async function fenceFirst(c: Context<AppEnv>, userId: string | null, sessionIds: string[]): Promise<void> {
  const fence = userId === null ? undefined : fenceOf(c, userId);
  if (fence) await fenceSessionIds(fence, sessionIds, c.get('config').ACCESS_TOKEN_TTL);
}

/** Fences every session of the user whose access tokens may still verify (before D1 and KV). */
export async function fenceUserSessions(c: Context<AppEnv>, userId: string): Promise<void> {
  if (!fenceOf(c, userId)) return;
  await fenceFirst(c, userId, await sessionIdsWithLiveTokens(c.env.DB, userId, now(), tokenLifetime(c)));
}

/**
 * Ends sessions of `userId` (null: unknown, nothing to fence): the fence first when configured,
 * then D1 (those still live), then their access tokens in KV, also for sessions D1 already shows
 * as ended: a retry after a failed KV write completes the job. Fence and KV errors propagate (no
 * silent success). Returns how many sessions this call ended in D1.
 */
export async function endSessions(c: Context<AppEnv>, userId: string | null, sessionIds: string[], alreadyRevokedInDb = false): Promise<number> {
  await fenceFirst(c, userId, sessionIds);
  const t = now();
  const ended = alreadyRevokedInDb ? [] : await Promise.all(sessionIds.map((id) => revokeSession(c.env.DB, id, t)));
  await revokeSessionIds(c.env.REVOKED, sessionIds, c.get('config').ACCESS_TOKEN_TTL);
  return ended.filter(Boolean).length;
}

/**
 * Ends one session of `userId`, idempotently: a live one, or one that ended so recently that
 * its access tokens may still verify (it is revoked in KV again: the retry of an attempt
 * whose KV write failed). False when there is nothing (left) to end.
 */
export async function endSession(c: Context<AppEnv>, sessionId: string, userId: string): Promise<boolean> {
  const session = await findSessionById(c.env.DB, sessionId);
  if (!session || session.userId !== userId) return false;
  if (session.revokedAt !== null && session.revokedAt < now() - tokenLifetime(c)) return false;
  await endSessions(c, userId, [session.id]);
  return true;
}

/**
 * Ends every session of a user: D1 first, then KV for every session whose access tokens may
 * still verify: those this call ended, those ended within the longest access-token lifetime
 * (so a retry after a failed KV write also covers the sessions the failed attempt already
 * ended in D1), and those that ran out just now (a token refreshed just before its session's
 * end lives until that end, plus clock tolerance). `callerSessionId`, the session making the
 * request, is revoked in KV last, once the others are: until then its token still works for
 * that retry. Returns the ids this call ended in D1.
 */
export async function endAllSessions(c: Context<AppEnv>, userId: string, callerSessionId?: string): Promise<string[]> {
  await fenceUserSessions(c, userId);
  const t = now();
  const ended = await revokeUserSessions(c.env.DB, userId, t);
  const live = await sessionIdsWithLiveTokens(c.env.DB, userId, t, tokenLifetime(c));
  const ttl = c.get('config').ACCESS_TOKEN_TTL;
  await revokeSessionIds(c.env.REVOKED, live.filter((id) => id !== callerSessionId), ttl);
  if (callerSessionId !== undefined) await revokeSessionIds(c.env.REVOKED, [callerSessionId], ttl);
  return ended;
}

export interface SignOutResult {
  userId: string | null;
  sessionId: string | null;
  /** Sessions this call ended in D1 (0 when there was nothing, or nothing left, to end). */
  ended: number;
}

/**
 * Sign-out, idempotent: it ends what the request proves, and otherwise still succeeds.
 * - An unexpired access token of ours ends its session, even when already revoked: that is
 *   the retry of a sign-out that failed part-way, and it finishes the job (`sid:` in KV first,
 *   so the token is dead even if D1 then fails, then the session in D1, then `sid:` again; all
 *   idempotent). A revoked token's session is ending anyway.
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
  if (claims) {
    await fenceFirst(c, claims.sub, [claims.sid]);
    await revokeSessionIds(c.env.REVOKED, [claims.sid], c.get('config').ACCESS_TOKEN_TTL);
    return { userId: claims.sub, sessionId: claims.sid, ended: await endSessions(c, claims.sub, [claims.sid]) };
  }
  const session = refreshToken ? await sessionForRefreshToken(c, refreshToken) : null;
  if (!session) return { userId: null, sessionId: null, ended: 0 };
  return { userId: session.userId, sessionId: session.id, ended: await endSessions(c, session.userId, [session.id]) };
}

/** The claims of a token we signed and that has not expired (revoked or not), or null if it names nothing to end. */
async function signOutClaims(c: Context<AppEnv>, presented: { token: string; via: 'bearer' | 'cookie' }): Promise<AccessClaims | null> {
  const config = c.get('config');
  try {
    return await verifyAccessToken({ keyring: c.get('keyring'), issuer: config.PUBLIC_URL, audience: config.accessTokenAudience }, presented.token);
  } catch (e) {
    // A browser's access cookie may be anything stale (expired, signed by a retired key): the
    // refresh cookie decides. A bearer token must at least be ours.
    const stale = e instanceof ExpiredTokenError || (presented.via === 'cookie' && e instanceof ApiError && e.code === 'invalid_token');
    if (stale) return null;
    throw e;
  }
}

/** The live session a refresh token belongs to, or null (no side effects). */
export async function sessionForRefreshToken(c: Context<AppEnv>, refreshToken: string): Promise<Session | null> {
  if (!REFRESH_TOKEN_SHAPE.test(refreshToken)) return null;
  const session = await findSessionByRefreshHash(c.env.DB, await sha256(refreshToken));
  if (!session || session.revokedAt !== null || session.expiresAt <= now()) return null;
  return session;
}

/**
 * Rotates a refresh token. A token that was already rotated is treated as stolen: its whole
 * session ends and a security event is recorded, unless it was rotated less than
 * {@link REFRESH_REUSE_GRACE_S} ago and its session is live (two tabs at once): then, as for
 * the losers of concurrent rotations of one token, the answer is `conflict` and nothing ends.
 */
export async function refreshSession(c: Context<AppEnv>, refreshToken: string): Promise<{ user: User; tokens: IssuedTokens }> {
  const config = c.get('config');
  const refused = invalidToken('The refresh token is invalid, expired or revoked.');
  if (!REFRESH_TOKEN_SHAPE.test(refreshToken)) throw refused;
  const hash = await sha256(refreshToken);
  const t = now();
  const session = await findSessionByRefreshHash(c.env.DB, hash);
  if (!session) {
    const rotated = await findRotatedToken(c.env.DB, hash);
    if (rotated) {
      const reusedSessionId = rotated.sessionId;
      const reused = await findSessionById(c.env.DB, reusedSessionId);
      const live = reused !== null && reused.revokedAt === null && reused.expiresAt > t;
      if (live && rotated.rotatedAt >= t - REFRESH_REUSE_GRACE_S) throw justRotated();
      await endSessions(c, reused?.userId ?? null, [reusedSessionId]);
      await recordEvent(c, {
        event: 'refresh_token_reuse',
        outcome: 'security',
        userId: reused?.userId ?? null,
        detail: { sid: reusedSessionId, message: 'A rotated refresh token was presented again; the session was ended.' },
      });
    }
    throw refused;
  }
  const absoluteEnd = session.createdAt + config.SESSION_MAX_AGE;
  if (session.revokedAt !== null || session.expiresAt <= t || absoluteEnd <= t) throw refused;
  // A revocation whose fence write landed but whose D1 write has not (yet): refused all the same.
  const fence = fenceOf(c, session.userId);
  if (fence && (await isFenced(fence, session.id))) throw refused;
  const user = await findUserById(c.env.DB, session.userId);
  if (!user || user.disabledAt !== null) {
    await endSessions(c, session.userId, [session.id]);
    throw refused;
  }
  const next = newRefreshToken();
  const expiresAt = Math.min(t + config.REFRESH_TOKEN_TTL, absoluteEnd);
  const won = await rotateRefreshHash(c.env.DB, session.id, hash, await sha256(next), expiresAt, t);
  if (!won) throw justRotated();
  const access = await accessTokenFor(c, user, { ...session, expiresAt });
  await recordEvent(c, { event: 'refresh', outcome: 'success', userId: user.id, detail: { sid: session.id } });
  return {
    user,
    tokens: {
      accessToken: access.token,
      accessTokenId: access.jti,
      expiresIn: access.expiresIn,
      refreshToken: next,
      sessionExpiresAt: expiresAt,
      session: { ...session, expiresAt, lastUsedAt: t },
    },
  };
}
