/**
 * The `sessions` table and refresh-token rotation. A session holds the SHA-256 of its current
 * refresh token; rotated hashes move to `rotated_refresh_tokens` so that a copy presented
 * later is recognised as reuse.
 */
import { randomId } from '../util/random';
import { guard } from './errors';
import { ACCOUNT_AS_READ, accountAsReadArgs, type AccountAsRead } from './users';

export interface Session {
  id: string;
  userId: string;
  family: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number;
  revokedAt: number | null;
  userAgent: string | null;
  ip: string | null;
  provider: string | null;
  /** How the user signed in (RFC 8176 `amr` values) and when (Unix seconds): refresh keeps both. */
  amr: string[];
  authTime: number;
}

interface SessionRow {
  id: string;
  user_id: string;
  refresh_hash: string;
  family: string;
  created_at: number;
  expires_at: number;
  last_used_at: number;
  revoked_at: number | null;
  user_agent: string | null;
  ip: string | null;
  provider: string | null;
  amr: string;
  auth_time: number | null;
}

export interface SessionWithHash extends Session {
  refreshHash: string;
}

function toSession(row: SessionRow): SessionWithHash {
  return {
    id: row.id,
    userId: row.user_id,
    family: row.family,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
    userAgent: row.user_agent,
    ip: row.ip,
    provider: row.provider,
    amr: parseAmr(row.amr),
    // Sessions from before migration 0005 have no auth_time: they signed in when they began.
    authTime: row.auth_time ?? row.created_at,
    refreshHash: row.refresh_hash,
  };
}

function parseAmr(text: string): string[] {
  try {
    const amr: unknown = JSON.parse(text);
    return Array.isArray(amr) ? amr.filter((m): m is string => typeof m === 'string') : [];
  } catch {
    return [];
  }
}

export interface NewSession {
  userId: string;
  refreshHash: string;
  expiresAt: number;
  userAgent: string | null;
  ip: string | null;
  provider: string | null;
  amr: string[];
}

const INSERT_SESSION = `INSERT INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, user_agent, ip, provider, amr, auth_time)`;

const sessionValues = (id: string, family: string, input: NewSession, now: number) =>
  [id, input.userId, input.refreshHash, family, now, input.expiresAt, now, input.userAgent, input.ip, input.provider, JSON.stringify(input.amr), now] as const;

/** Inserts a new session, only while the account is as the sign-in read it ({@link AccountAsRead}); null if not. */
export async function insertSession(db: D1Database, input: NewSession, now: number, asRead: AccountAsRead): Promise<Session | null> {
  const id = `ses_${randomId(12)}`;
  const family = randomId(12);
  const r = await guard(() => db.prepare(`${INSERT_SESSION} SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ${ACCOUNT_AS_READ}`).bind(...sessionValues(id, family, input, now), ...accountAsReadArgs(asRead)).run());
  return r.meta.changes === 1 ? newSession(id, family, input, now) : null;
}

/**
 * Inserts the session only if it spends the pending second-factor sign-in `pendingHash`
 * (storage/mfa-pending.ts) in the same transaction: unused and unexpired, now used. Null if it
 * was not (a replay, a concurrent completion, expiry). A failure leaves both unchanged.
 */
export async function insertSessionSpendingPending(db: D1Database, input: NewSession, pendingHash: string, now: number): Promise<Session | null> {
  const id = `ses_${randomId(12)}`;
  const family = randomId(12);
  const [, inserted] = await guard(() => db.batch([
    db.prepare('UPDATE mfa_pending SET used_at = ? WHERE id_hash = ? AND used_at IS NULL AND expires_at > ?').bind(now, pendingHash, now),
    db.prepare(`${INSERT_SESSION} SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1`).bind(...sessionValues(id, family, input, now)),
  ]));
  return inserted?.meta.changes === 1 ? newSession(id, family, input, now) : null;
}

function newSession(id: string, family: string, input: NewSession, now: number): Session {
  return {
    id,
    userId: input.userId,
    family,
    createdAt: now,
    expiresAt: input.expiresAt,
    lastUsedAt: now,
    revokedAt: null,
    userAgent: input.userAgent,
    ip: input.ip,
    provider: input.provider,
    amr: [...input.amr],
    authTime: now,
  };
}

/**
 * A step-up: the live session's user authenticated again, now, with `amr`. Returns when the
 * session began and when its refresh token expires (a new access token must not outlive either),
 * or null if the session is no longer live, or past its absolute end (`created_at + maxAge`):
 * nothing changed.
 */
export async function updateSessionAuth(
  db: D1Database,
  sessionId: string,
  amr: string[],
  authTime: number,
  maxAge: number,
): Promise<Pick<Session, 'createdAt' | 'expiresAt'> | null> {
  const row = await guard(() => db
    .prepare('UPDATE sessions SET amr = ?, auth_time = ?, last_used_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ? AND created_at + ? > ? RETURNING created_at, expires_at')
    .bind(JSON.stringify(amr), authTime, authTime, sessionId, authTime, maxAge, authTime)
    .first<{ created_at: number; expires_at: number }>());
  return row ? { createdAt: row.created_at, expiresAt: row.expires_at } : null;
}

export async function findSessionById(db: D1Database, id: string): Promise<SessionWithHash | null> {
  const row = await guard(() => db.prepare('SELECT * FROM sessions WHERE id = ?').bind(id).first<SessionRow>());
  return row ? toSession(row) : null;
}

export async function findSessionByRefreshHash(db: D1Database, hash: string): Promise<SessionWithHash | null> {
  const row = await guard(() => db.prepare('SELECT * FROM sessions WHERE refresh_hash = ?').bind(hash).first<SessionRow>());
  return row ? toSession(row) : null;
}

/** The session a rotated (already used) refresh token belonged to, and when it was rotated, if any. */
export async function findRotatedToken(db: D1Database, hash: string): Promise<{ sessionId: string; rotatedAt: number } | null> {
  const row = await guard(() => db
    .prepare('SELECT session_id, rotated_at FROM rotated_refresh_tokens WHERE hash = ?')
    .bind(hash)
    .first<{ session_id: string; rotated_at: number }>());
  return row ? { sessionId: row.session_id, rotatedAt: row.rotated_at } : null;
}

/**
 * Swaps the refresh hash if, and only if, it is still `oldHash` and the session is live: a
 * conditional update, so of several concurrent rotations with one token exactly one wins.
 * The old hash is recorded as rotated in the same transaction, only when the swap happened.
 */
export async function rotateRefreshHash(
  db: D1Database,
  sessionId: string,
  oldHash: string,
  newHash: string,
  expiresAt: number,
  now: number,
): Promise<boolean> {
  const [update] = await guard(() => db.batch([
    db
      .prepare(
        `UPDATE sessions SET refresh_hash = ?, expires_at = ?, last_used_at = ?
         WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL AND expires_at > ?`,
      )
      .bind(newHash, expiresAt, now, sessionId, oldHash, now),
    db
      .prepare('INSERT OR IGNORE INTO rotated_refresh_tokens (hash, session_id, rotated_at) SELECT ?, ?, ? WHERE changes() = 1')
      .bind(oldHash, sessionId, now),
  ]));
  return update?.meta.changes === 1;
}

export async function revokeSession(db: D1Database, sessionId: string, now: number): Promise<boolean> {
  const r = await guard(() => db.prepare('UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').bind(now, sessionId).run());
  return r.meta.changes === 1;
}

/** Ends every live session of a user; returns the ids it ended. */
export async function revokeUserSessions(db: D1Database, userId: string, now: number): Promise<string[]> {
  const { results } = await guard(() => db
    .prepare('UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? RETURNING id')
    .bind(now, userId, now)
    .all<{ id: string }>());
  return results.map((r) => r.id);
}

export async function listActiveSessions(db: D1Database, userId: string, now: number): Promise<Session[]> {
  const { results } = await guard(() => db
    .prepare('SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY last_used_at DESC LIMIT 100')
    .bind(userId, now)
    .all<SessionRow>());
  return results.map((r) => {
    const { refreshHash: _omit, ...session } = toSession(r);
    return session;
  });
}

/** Housekeeping: deletes up to `limit` sessions that ended before `before`. Returns how many. */
export async function deleteEndedSessions(db: D1Database, before: number, limit: number): Promise<number> {
  const r = await guard(() => db
    .prepare(
      `DELETE FROM sessions WHERE id IN (
         SELECT id FROM sessions WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?) LIMIT ?)`,
    )
    .bind(before, before, limit)
    .run());
  return r.meta.changes;
}

/**
 * Sessions of a user whose access tokens may still be unexpired: those not revoked, or revoked
 * in the last `accessTtl` seconds (a token's lifetime plus clock tolerance), whose refresh
 * expiry is less than `accessTtl` ago. A session that simply ran out counts too: an access
 * token never outlives its session's `expires_at` (auth/sessions.ts caps it), and the margin
 * also covers any token signed before that cap. Revoking all of these in KV is idempotent, so
 * a retry after a failed KV write still covers sessions that D1 already shows as ended.
 */
export async function sessionIdsWithLiveTokens(db: D1Database, userId: string, now: number, accessTtl: number): Promise<string[]> {
  const { results } = await guard(() => db
    .prepare('SELECT id FROM sessions WHERE user_id = ? AND (revoked_at IS NULL OR revoked_at >= ?) AND expires_at > ?')
    .bind(userId, now - accessTtl, now - accessTtl)
    .all<{ id: string }>());
  return results.map((r) => r.id);
}
