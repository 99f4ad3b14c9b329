/**
 * The OAuth part of a user's Durable Object (storage/user-sessions.ts): authorization codes and
 * the grants apps hold on the user's sessions (README "Apps (OpenID Connect)"). Each function
 * runs inside one of the object's synchronous transactions (`sql` is its storage); the object
 * imports this module on its first OAuth call, so isolates that serve no app never evaluate it.
 */
import { toSession, type AuthorizationCodeRow, type Session, type SessionRow } from './user-sessions';

/** An authorization code as the object stores it: the row given, with the session's `auth_time` and `amr` (JSON list of RFC 8176 values). */
export interface OAuthCodeRow extends AuthorizationCodeRow {
  auth_time: number;
  amr: string;
}

/** A grant: what a client holds on one of the user's sessions (its scope, its current refresh token's hash). */
export interface OAuthGrant {
  id: string;
  sessionId: string;
  clientId: string;
  scope: string;
  resource: string | null;
  /** Whether a refresh token was issued for it (its hash is never handed out). */
  hasRefreshToken: boolean;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export interface OAuthGrantRow {
  id: string;
  session_id: string;
  client_id: string;
  scope: string;
  resource: string | null;
  refresh_hash: string | null;
  created_at: number;
  expires_at: number;
  last_used_at: number;
  revoked_at: number | null;
  /** The client's token epoch when the grant was made (null: made by an earlier version). */
  client_epoch: string | null;
}

const toGrant = (r: OAuthGrantRow): OAuthGrant => ({
  id: r.id,
  sessionId: r.session_id,
  clientId: r.client_id,
  scope: r.scope,
  resource: r.resource,
  hasRefreshToken: r.refresh_hash !== null,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

export interface SpendCodeRequest {
  /** SHA-256 of the code's secret. */
  hash: string;
  clientId: string;
  /** The client's current token epoch: the grant lives only while the client keeps it. */
  clientEpoch: string;
  redirectUri: string;
  /** S256 of the presented `code_verifier` (compared with the stored challenge). */
  verifierChallenge: string;
  now: number;
  /** The grant to create if the code is good: its id, and its refresh token's hash (null: none issued). */
  grantId: string;
  refreshHash: string | null;
  /** The grant's latest end (now + REFRESH_TOKEN_TTL); the session's absolute end (`maxAge`) bounds it too. */
  grantExpiresAt: number;
  maxAge: number;
}

export type SpendCodeOutcome =
  | { kind: 'unknown' }
  /** Used before: the grant it led to (if any) is ended here now; the caller revokes its tokens. */
  | { kind: 'replayed'; sessionId: string; grantId: string | null }
  /** Spent now but refused: another client, another redirect URI, a wrong verifier, too late, or its session has ended. */
  | { kind: 'refused'; reason: 'wrong_client' | 'wrong_redirect_uri' | 'wrong_verifier' | 'expired' | 'ended'; sessionId: string }
  | { kind: 'spent'; code: Omit<OAuthCodeRow, 'hash'>; session: Session; grant: OAuthGrant };

export type EndGrantOutcome = { kind: 'unknown' } | { kind: 'other_client' } | { kind: 'ended'; grantId: string; sessionId: string };

export interface RotateGrantRequest {
  hash: string;
  newHash: string;
  clientId: string;
  /** The client's current token epoch: a grant made under an earlier one (before a disable) is ended. */
  clientEpoch: string;
  now: number;
  refreshTtl: number;
  maxAge: number;
  grace: number;
  /** The scopes asked for (each one the grant's), or null to keep the grant's. */
  scope: string[] | null;
  /** The RFC 8707 resource asked for (it must be the grant's), or null: the grant's. */
  resource: string | null;
  /** The scopes the client's registration allows now: a granted one taken away since is dropped from the grant. */
  clientScopes: readonly string[];
  /** The resources the client may get tokens for now (protected resources, its allowed audiences). */
  clientResources: readonly string[];
}

export type RotateGrantOutcome =
  /**
   * Unknown here, ended, expired, its session has ended; or (then ended now) made under an
   * earlier epoch of its client, for a resource or with scopes the client may no longer have.
   */
  | { kind: 'invalid' }
  /** The grant is another client's: nothing changed. */
  | { kind: 'wrong_client' }
  /** A scope the grant does not have was asked for: nothing changed. */
  | { kind: 'wider_scope' }
  /** A resource other than the grant's was asked for: nothing changed. */
  | { kind: 'other_resource' }
  | { kind: 'conflict' }
  /** A rotated token presented after the grace: the grant is ended. */
  | { kind: 'reused'; grantId: string; sessionId: string }
  | { kind: 'rotated'; grant: OAuthGrant; session: Session };

/**
 * Whether a grant of this scope gets a refresh token (when its client may use them): asked
 * for with `offline_access` (OpenID Connect Core §11), or a plain OAuth grant (no `openid`:
 * MCP clients and other OAuth clients expect one).
 */
export function grantGetsRefreshToken(scope: string): boolean {
  const list = scope.split(' ');
  return list.includes('offline_access') || !list.includes('openid');
}

/** The session row with this id, ended or not, or null. */
function sessionRow(sql: SqlStorage, id: string): SessionRow | null {
  return sql.exec<SessionRow & Record<string, SqlStorageValue>>('SELECT * FROM sessions WHERE id = ?', id).toArray()[0] ?? null;
}

const grantRow = (sql: SqlStorage, where: 'id' | 'refresh_hash', value: string): OAuthGrantRow | null =>
  sql.exec<OAuthGrantRow & Record<string, SqlStorageValue>>(`SELECT * FROM oauth_grants WHERE ${where === 'id' ? 'id' : 'refresh_hash'} = ?`, value).toArray()[0] ?? null;

/** The grant with this id if it, and its session, are live at `now`; else null. */
export function liveGrant(sql: SqlStorage, grantId: string, now: number): { grant: OAuthGrantRow; session: SessionRow } | null {
  const grant = grantRow(sql, 'id', grantId);
  if (!grant || grant.revoked_at !== null || grant.expires_at <= now) return null;
  const session = sessionRow(sql, grant.session_id);
  if (!session || session.revoked_at !== null || session.expires_at <= now) return null;
  return { grant, session };
}

/**
 * Spends an authorization code: a known code is used once, whatever the outcome (one presented
 * by another client, or with a wrong verifier, cannot be tried again). A code presented again
 * ends the grant its first exchange created (RFC 6749 §4.1.2: the tokens issued from it are
 * revoked); the caller revokes its tokens in KV. A good code creates the grant, bounded by the
 * session's absolute end.
 */
export function spendCode(sql: SqlStorage, r: SpendCodeRequest): SpendCodeOutcome {
  const code = sql.exec<OAuthCodeRow & { used_at: number | null; grant_id: string | null } & Record<string, SqlStorageValue>>('SELECT * FROM oauth_codes WHERE hash = ?', r.hash).toArray()[0];
  if (!code) return { kind: 'unknown' };
  const sessionId = code.session_id;
  if (code.used_at !== null) {
    if (code.grant_id !== null) sql.exec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', r.now, code.grant_id);
    return { kind: 'replayed', sessionId, grantId: code.grant_id };
  }
  sql.exec('UPDATE oauth_codes SET used_at = ? WHERE hash = ?', r.now, r.hash);
  const refused = (reason: Extract<SpendCodeOutcome, { kind: 'refused' }>['reason']): SpendCodeOutcome => ({ kind: 'refused', reason, sessionId });
  if (code.client_id !== r.clientId) return refused('wrong_client');
  if (code.redirect_uri !== r.redirectUri) return refused('wrong_redirect_uri');
  if (code.code_challenge !== r.verifierChallenge) return refused('wrong_verifier');
  if (code.expires_at <= r.now) return refused('expired');
  const session = sessionRow(sql, sessionId);
  const absoluteEnd = session ? session.created_at + r.maxAge : 0;
  if (!session || session.revoked_at !== null || session.expires_at <= r.now || absoluteEnd <= r.now) return refused('ended');
  const grant: OAuthGrantRow = {
    id: r.grantId,
    session_id: sessionId,
    client_id: code.client_id,
    scope: code.scope,
    resource: code.resource,
    refresh_hash: r.refreshHash !== null && grantGetsRefreshToken(code.scope) ? r.refreshHash : null,
    created_at: r.now,
    expires_at: Math.min(r.grantExpiresAt, absoluteEnd),
    last_used_at: r.now,
    revoked_at: null,
    client_epoch: r.clientEpoch,
  };
  sql.exec(
    'INSERT INTO oauth_grants (id, session_id, client_id, scope, resource, refresh_hash, created_at, expires_at, last_used_at, revoked_at, client_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)',
    grant.id, grant.session_id, grant.client_id, grant.scope, grant.resource, grant.refresh_hash, grant.created_at, grant.expires_at, grant.last_used_at, grant.client_epoch,
  );
  sql.exec('UPDATE oauth_codes SET grant_id = ? WHERE hash = ?', grant.id, r.hash);
  const { hash: _hash, used_at: _used, grant_id: _grant, ...kept } = code;
  return { kind: 'spent', code: kept, session: toSession(session), grant: toGrant(grant) };
}

/**
 * Rotates a grant's refresh token (as the object's `rotate` does a session's): the current
 * token of a live grant on a live session, presented by the grant's client, gets a successor; a
 * rotated one is a conflict within the grace, and otherwise a reuse that ends the grant. The
 * grant's end never passes its session's absolute end; scope may only narrow; the resource
 * is the grant's.
 */
export function rotateGrantToken(sql: SqlStorage, r: RotateGrantRequest): RotateGrantOutcome {
  const row = grantRow(sql, 'refresh_hash', r.hash);
  if (!row) {
    const rotated = sql.exec<{ grant_id: string; rotated_at: number }>('SELECT grant_id, rotated_at FROM oauth_rotated_tokens WHERE hash = ?', r.hash).toArray()[0];
    if (!rotated) return { kind: 'invalid' };
    const owner = grantRow(sql, 'id', rotated.grant_id);
    if (!owner) return { kind: 'invalid' };
    if (owner.client_id !== r.clientId) return { kind: 'wrong_client' };
    if (liveGrant(sql, owner.id, r.now) && rotated.rotated_at >= r.now - r.grace) return { kind: 'conflict' };
    sql.exec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', r.now, owner.id);
    return { kind: 'reused', grantId: owner.id, sessionId: owner.session_id };
  }
  if (row.client_id !== r.clientId) return { kind: 'wrong_client' };
  const live = liveGrant(sql, row.id, r.now);
  if (!live) return { kind: 'invalid' };
  if (row.client_epoch !== r.clientEpoch) {
    // Disabling the client moved its epoch: what it held then stays ended, also once it is enabled again.
    sql.exec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ?', r.now, row.id);
    return { kind: 'invalid' };
  }
  const absoluteEnd = live.session.created_at + r.maxAge;
  if (absoluteEnd <= r.now) return { kind: 'invalid' };
  // The client's registration as it stands bounds what a refresh mints: a scope taken away from
  // it since the grant is dropped; a resource taken away, or every scope it had, ends the grant
  // (a grant asked for without a scope, as OAuth allows, has none to lose).
  const had = row.scope.split(' ').filter(Boolean);
  const granted = had.filter((s) => r.clientScopes.includes(s));
  if ((had.length > 0 && granted.length === 0) || (row.resource !== null && !r.clientResources.includes(row.resource))) {
    sql.exec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ?', r.now, row.id);
    return { kind: 'invalid' };
  }
  const asked = r.scope;
  if (asked !== null && asked.some((s) => !granted.includes(s))) return { kind: 'wider_scope' };
  // The grant's tokens are for its one resource: a token for it must never go out as another's.
  if (r.resource !== null && r.resource !== row.resource) return { kind: 'other_resource' };
  const expiresAt = Math.min(r.now + r.refreshTtl, absoluteEnd);
  const scope = (asked === null ? granted : granted.filter((s) => asked.includes(s))).join(' ');
  sql.exec('UPDATE oauth_grants SET refresh_hash = ?, scope = ?, expires_at = ?, last_used_at = ? WHERE id = ?', r.newHash, scope, expiresAt, r.now, row.id);
  sql.exec('INSERT OR IGNORE INTO oauth_rotated_tokens (hash, grant_id, rotated_at) VALUES (?, ?, ?)', r.hash, row.id, r.now);
  return { kind: 'rotated', grant: toGrant({ ...row, refresh_hash: r.newHash, scope, expires_at: expiresAt, last_used_at: r.now }), session: toSession(live.session) };
}

/**
 * The grant whose current or rotated refresh token has this hash, for RFC 7009 revocation:
 * ended now if `clientId` holds it; another client's is left as it is.
 */
export function endByRefresh(sql: SqlStorage, hash: string, clientId: string, now: number): EndGrantOutcome {
  const row = sql
    .exec<{ id: string; session_id: string; client_id: string }>(
      `SELECT id, session_id, client_id FROM oauth_grants WHERE refresh_hash = ?1
       UNION ALL SELECT g.id, g.session_id, g.client_id FROM oauth_rotated_tokens r JOIN oauth_grants g ON g.id = r.grant_id WHERE r.hash = ?1 LIMIT 1`,
      hash,
    )
    .toArray()[0];
  if (!row) return { kind: 'unknown' };
  if (row.client_id !== clientId) return { kind: 'other_client' };
  sql.exec('UPDATE oauth_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', now, row.id);
  return { kind: 'ended', grantId: row.id, sessionId: row.session_id };
}
