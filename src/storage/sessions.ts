/**
 * Sessions: each user's live in their own Durable Object (storage/user-sessions.ts), reached
 * through these functions; every failure to reach it (a broken binding, an object that throws or
 * cannot be reached) is a {@link StorageUnavailableError}, a 503, never a pass.
 *
 * D1's `sessions` and `rotated_refresh_tokens` tables are what earlier versions stored: an
 * object copies its user's rows on first use, and the rows stay only to route a refresh token
 * of the old shape (no routing part) to its user's object ({@link legacyRefreshOwner}), also
 * once rotated there (a second use must reach the object to count as a conflict or a reuse),
 * until the row expires ({@link deleteEndedLegacySessions}).
 */
import { log } from '../observability/log';
import { guard, StorageUnavailableError } from './errors';
import {
  sessionsStub,
  toSession,
  type AuthorizationCodeRow,
  type ConsentRow,
  type EndGrantOutcome,
  type HostCodeOutcome,
  type HostCodeRow,
  type OAuthGrant,
  type ProviderGroups,
  type RotateGrantOutcome,
  type RotateGrantRequest,
  type RotateOutcome,
  type RotateRequest,
  type Session,
  type SessionRow,
  type SessionStore,
  type SpendCodeOutcome,
  type SpendCodeRequest,
} from './user-sessions';

export { GRANT_ID_PREFIX, LISTED_SESSIONS_MAX } from './user-sessions';
export type { AuthorizationCodeRow, ConsentRow, EndGrantOutcome, HostCodeOutcome, HostCodeRow, OAuthGrant, ProviderGroups, RotateGrantOutcome, RotateOutcome, Session, SessionStore, SpendCodeOutcome };

/** Runs one call on the user's object; any failure is a 503 (logged), never a pass. */
async function onObject<T>(store: SessionStore, call: (stub: ReturnType<typeof sessionsStub>) => Promise<T>): Promise<T> {
  try {
    return await call(sessionsStub(store));
  } catch (e) {
    log.error('user_sessions_failed', { error: e instanceof Error ? e.message : String(e) });
    throw new StorageUnavailableError(e, 'Sessions cannot be reached right now. Try again shortly.');
  }
}

export interface NewSession {
  userId: string;
  refreshHash: string;
  expiresAt: number;
  userAgent: string | null;
  ip: string | null;
  /** The edge's country code of the sign-in request (http/client.ts `clientCountry`), or null. */
  country: string | null;
  provider: string | null;
  amr: string[];
  /** The groups the provider of this sign-in supplied, or null (other methods, providers without groups). */
  groups: ProviderGroups | null;
  /** The provider's session id (its ID token's `sid`), or null (other methods, providers that name none). */
  providerSid: string | null;
}

/** Stores a new session in its user's object (the sign-in pipeline's alone: auth/sign-in.ts). */
export async function insertSession(store: SessionStore, input: NewSession, id: string, family: string, now: number): Promise<Session> {
  const row: SessionRow = {
    id,
    user_id: input.userId,
    refresh_hash: input.refreshHash,
    family,
    created_at: now,
    expires_at: input.expiresAt,
    last_used_at: now,
    revoked_at: null,
    user_agent: input.userAgent,
    ip: input.ip,
    country: input.country,
    provider: input.provider,
    amr: JSON.stringify(input.amr),
    auth_time: now,
    groups: input.groups ? JSON.stringify(input.groups.groups) : null,
    groups_read_at: input.groups?.readAt ?? null,
    provider_subject: input.groups?.source.subject ?? null,
    provider_grant: input.groups?.source.grant ?? null,
    provider_sid: input.providerSid,
  };
  await onObject(store, (s) => s.create(store.userId, row));
  return toSession(row);
}

/** See UserSessions.setGroups. */
export function setSessionGroups(store: SessionStore, sessionId: string, expectedGrant: string | null, update: { groups: string[] | null; readAt: number; grant: string | null }): Promise<boolean> {
  return onObject(store, (s) => s.setGroups(store.userId, sessionId, expectedGrant, update));
}

/** See UserSessions.stepUp. */
export function updateSessionAuth(store: SessionStore, sessionId: string, amr: string[], authTime: number, maxAge: number): Promise<Pick<Session, 'createdAt' | 'expiresAt' | 'groups' | 'groupsReadAt'> | null> {
  return onObject(store, (s) => s.stepUp(store.userId, sessionId, amr, authTime, maxAge));
}

/** The user's session with this id, ended or not, or null. */
export function findSession(store: SessionStore, id: string): Promise<Session | null> {
  return onObject(store, (s) => s.find(store.userId, 'id', id));
}

/** The user's session whose current refresh token has this hash, ended or not, or null. */
export function findSessionByRefreshHash(store: SessionStore, hash: string): Promise<Session | null> {
  return onObject(store, (s) => s.find(store.userId, 'refresh_hash', hash));
}

/** Rotation with reuse detection, one transaction in the object (UserSessions.rotate). */
export function rotateRefreshToken(store: SessionStore, request: RotateRequest): Promise<RotateOutcome> {
  return onObject(store, async (s) => (await s.rotate(store.userId, { ...request, notify: store.notify ?? [] })).outcome);
}

/** Stores a code that hands a live session to an app host (UserSessions.createHostCode). */
export function insertHostCode(store: SessionStore, code: HostCodeRow): Promise<boolean> {
  return onObject(store, (s) => s.createHostCode(store.userId, code));
}

/** Spends a host code, once (UserSessions.spendHostCode). */
export function spendHostCode(store: SessionStore, hash: string, origin: string, stateHash: string, now: number): Promise<HostCodeOutcome> {
  return onObject(store, async (s) => (await s.spendHostCode(store.userId, hash, origin, stateHash, now)).outcome);
}

/** Stores an authorization code for a live session (UserSessions.createAuthorizationCode). */
export function insertAuthorizationCode(store: SessionStore, code: AuthorizationCodeRow): Promise<boolean> {
  return onObject(store, (s) => s.createAuthorizationCode(store.userId, code));
}

/** The user's consent to a client, or null (UserSessions.findConsent). */
export function findConsent(store: SessionStore, clientId: string): Promise<ConsentRow | null> {
  return onObject(store, (s) => s.findConsent(store.userId, clientId));
}

/** Remembers the user's consent to a client for `scopes` and `resources`, added to what it had (UserSessions.grantConsent). */
export function storeConsent(store: SessionStore, clientId: string, scopes: string[], resources: string[], now: number): Promise<void> {
  return onObject(store, (s) => s.grantConsent(store.userId, clientId, scopes, resources, now));
}

export function listConsents(store: SessionStore): Promise<ConsentRow[]> {
  return onObject(store, (s) => s.listConsents(store.userId));
}

/** Withdraws a consent and ends that client's grants, one transaction (UserSessions.revokeConsent). */
export function withdrawConsent(store: SessionStore, clientId: string, now: number, accessTtl: number): Promise<{ hadConsent: boolean; grantIds: string[]; withLiveTokens: string[] }> {
  return onObject(store, (s) => s.revokeConsent(store.userId, clientId, now, accessTtl));
}

/** Spends an authorization code once, creating its grant (UserSessions.spendAuthorizationCode). */
export function spendAuthorizationCode(store: SessionStore, request: SpendCodeRequest): Promise<SpendCodeOutcome> {
  return onObject(store, async (s) => (await s.spendAuthorizationCode(store.userId, request)).outcome);
}

/** Rotates a grant's refresh token with reuse detection (UserSessions.rotateGrant). */
export function rotateGrantRefreshToken(store: SessionStore, request: RotateGrantRequest): Promise<RotateGrantOutcome> {
  return onObject(store, async (s) => (await s.rotateGrant(store.userId, request)).outcome);
}

/** Ends the grant a refresh token (current or rotated) belongs to, if `clientId`'s (UserSessions.endGrantByRefresh). */
export function endGrantByRefreshHash(store: SessionStore, hash: string, clientId: string, now: number): Promise<EndGrantOutcome> {
  return onObject(store, async (s) => (await s.endGrantByRefresh(store.userId, hash, clientId, now)).outcome);
}

/** Ends one grant of `clientId` (UserSessions.endGrant). */
export function endGrantIn(store: SessionStore, grantId: string, clientId: string, now: number): Promise<boolean> {
  return onObject(store, (s) => s.endGrant(store.userId, grantId, clientId, now));
}

/** Ends those of the sessions still live; returns the ids this call ended. */
export function endSessionsIn(store: SessionStore, sessionIds: string[], now: number): Promise<string[]> {
  if (sessionIds.length === 0) return Promise.resolve([]);
  return onObject(store, (s) => s.end(store.userId, sessionIds, now, store.notify ?? []));
}

/** Ends every live session of the user (UserSessions.endAll). */
export function endAllSessionsIn(store: SessionStore, now: number, accessTtl: number): Promise<{ ended: string[]; withLiveTokens: string[] }> {
  return onObject(store, (s) => s.endAll(store.userId, now, accessTtl, store.notify ?? []));
}

/**
 * Sessions of the user whose access tokens may still be unexpired: not ended, or ended in the
 * last `accessTtl` seconds, and whose refresh expiry is less than `accessTtl` ago (an access
 * token never outlives its session's `expires_at`). Revoking all of these in KV is idempotent,
 * so a retry after a failed KV write still covers sessions already ended.
 */
export function sessionIdsWithLiveTokens(store: SessionStore, now: number, accessTtl: number): Promise<string[]> {
  return onObject(store, (s) => s.withLiveTokens(store.userId, now, accessTtl));
}

export function listActiveSessions(store: SessionStore, now: number): Promise<Session[]> {
  return onObject(store, (s) => s.list(store.userId, now));
}

/** The user's live sessions started from `provider` (and from its session `providerSid`, if given): UserSessions.providerSessions. */
export function providerSessionIds(store: SessionStore, provider: string, providerSid: string | null, now: number): Promise<string[]> {
  return onObject(store, (s) => s.providerSessions(store.userId, provider, providerSid, now));
}

/** Deletes everything the user's object holds (account deletion, after ending every session). */
export function forgetSessions(store: SessionStore): Promise<void> {
  return onObject(store, (s) => s.forget(store.userId, store.notify ?? []));
}

/** The fence: true if the session is ended (or unknown) in its user's object. Never cached. */
export function isSessionEndedIn(store: SessionStore, sessionId: string): Promise<boolean> {
  return onObject(store, (s) => s.isRevoked(store.userId, sessionId));
}

/**
 * The user a refresh token of the old shape belongs to, from D1 (a session stored by an earlier
 * version, current or rotated token), or null.
 */
export async function legacyRefreshOwner(db: D1Database, hash: string): Promise<string | null> {
  const row = await guard(() => db
    .prepare(`SELECT user_id FROM sessions WHERE refresh_hash = ?1
              UNION ALL SELECT s.user_id FROM rotated_refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = ?1 LIMIT 1`)
    .bind(hash)
    .first<{ user_id: string }>());
  return row ? row.user_id : null;
}

/** Housekeeping of the old table: deletes up to `limit` D1 session rows that ended before `before`. */
export async function deleteEndedLegacySessions(db: D1Database, before: number, limit: number): Promise<number> {
  const r = await guard(() => db
    .prepare(
      `DELETE FROM sessions WHERE id IN (
         SELECT id FROM sessions WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?) LIMIT ?)`,
    )
    .bind(before, before, limit)
    .run());
  return r.meta.changes;
}
