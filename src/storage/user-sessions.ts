/**
 * One Durable Object per user (`idFromName(userId)`, binding `USER_SESSIONS`) owns that user's
 * sessions: their rows, the hashes of rotated refresh tokens (reuse detection), and the
 * revocation fence (an ended session is refused here at once, everywhere). Each method runs as
 * one synchronous SQLite transaction inside the object, which runs one request at a time: two
 * refreshes of one token cannot both win, by construction, not by a conditional update.
 *
 * Housekeeping is the object's own alarm: ended and expired sessions go a day after their end,
 * rotated-token records with their session (or once older than the refresh-token lifetime),
 * host codes and apps' authorization codes a day after their expiry, apps' grants a day after
 * they end.
 *
 * The apps' authorization codes and grants (README "Apps (OpenID Connect)") live here too, with
 * the sessions they hang on: ending a session ends its grants in the same transaction. The
 * token side's logic is storage/user-sessions-grants.ts, imported on the first call that needs it.
 *
 * Back-channel logout (README "Apps (OpenID Connect)"): every way a session ends (end, endAll,
 * a reuse in rotate, forget) writes, in the transaction that ends it, one outbox row per client
 * holding a grant on it; the same alarm delivers them (storage/logout-outbox.ts decides what is
 * due and when to retry), so no relying party ever delays a sign-out, and a Worker that dies
 * right after the end loses nothing. Signing and sending is {@link UserSessions.deliverLogout},
 * which the Worker's own subclass supplies (src/index.ts): this layer cannot read the config
 * or the keys.
 *
 * Logout notices to origins (README "Revocation"): the same transactions also owe each route's
 * `logout_notify` target (passed in by the caller, from ROUTES) a notice of every session they
 * end, in `origin_logout_notices`; the alarm hands them to the `LOGOUT_NOTICES` queue
 * (storage/logout-notices.ts), whose consumer delivers them with retries.
 *
 * Sessions stored in D1 by earlier versions are copied in, once, the first time the object is
 * used (`ready`); their D1 rows stay only to route a refresh
 * token of the old shape to this object, and go when that token is rotated here.
 */
import { DurableObject } from 'cloudflare:workers';
import type { EndGrantOutcome, OAuthCodeRow, RotateGrantOutcome, RotateGrantRequest, SpendCodeOutcome, SpendCodeRequest } from './user-sessions-grants';

export type { EndGrantOutcome, OAuthCodeRow, OAuthGrant, RotateGrantOutcome, RotateGrantRequest, SpendCodeOutcome, SpendCodeRequest } from './user-sessions-grants';
import { nowSeconds } from '../util/time';
import type { LogoutDelivery, LogoutOutcome } from './logout-outbox';
import type { LogoutNoticeQueue, LogoutNoticeTarget } from './logout-notices';

export type { LogoutDelivery, LogoutOutcome };
export type { LogoutNotice, LogoutNoticeQueue, LogoutNoticeTarget } from './logout-notices';

/** The most live sessions a listing of one user's sessions holds: the most recently used. */
export const LISTED_SESSIONS_MAX = 100;

/**
 * What the object reads from the Worker's bindings: D1, for the one-off copy of old sessions,
 * and the queue its alarm hands origins' logout notices to (its subclass reads more).
 */
export interface UserSessionsEnv {
  DB: D1Database;
  LOGOUT_NOTICES?: LogoutNoticeQueue;
}

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
  /**
   * Where the session was started: the country the Cloudflare edge gave the sign-in request
   * (ISO 3166-1 alpha-2, or `T1` for Tor), or null: unknown, or a session of an earlier version.
   */
  country: string | null;
  provider: string | null;
  /** How the user signed in (RFC 8176 `amr` values) and when (Unix seconds): refresh keeps both. */
  amr: string[];
  authTime: number;
  /** The provider's groups as last read, or null: a sign-in that brought none (and sessions of earlier versions). */
  groups: string[] | null;
  /** When `groups` were read (Unix seconds); null with them. */
  groupsReadAt: number | null;
  /** Where they can be read again: the provider's subject, and its grant sealed (null: none kept). */
  groupSource: GroupSource | null;
  /**
   * The sign-in provider's own session this one was started from (its ID token's `sid`), or
   * null: not a provider sign-in, a provider that names none, or a session of an earlier version.
   * A logout token from that provider naming it ends this session (auth/provider-logout.ts).
   */
  providerSid: string | null;
}

/** What a provider sign-in leaves for re-reading groups: who, and the sealed provider tokens (or none). */
export interface GroupSource {
  subject: string;
  grant: string | null;
}

/** A provider's groups for a new session: the names, when read, and where to read them again. */
export interface ProviderGroups {
  groups: string[];
  readAt: number;
  source: GroupSource;
}

/** A session row as D1 stored it and the object stores it (the same columns; the group columns are the object's alone). */
export interface SessionRow {
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
  /** JSON list of group names, or null. Absent in rows D1 kept. */
  groups?: string | null;
  groups_read_at?: number | null;
  provider_subject?: string | null;
  provider_grant?: string | null;
  provider_sid?: string | null;
  /** Absent in rows D1 kept and in objects of earlier versions. */
  country?: string | null;
}

/** Columns added to the object's `sessions` table after its first version: objects made before get them at start. */
const ADDED_COLUMNS = [
  ['groups', 'TEXT'],
  ['groups_read_at', 'INTEGER'],
  ['provider_subject', 'TEXT'],
  ['provider_grant', 'TEXT'],
  ['provider_sid', 'TEXT'],
  ['country', 'TEXT'],
] as const;

/**
 * What ending a session does besides `revoked_at`: its provider grant (a live provider refresh
 * token, sealed) is of no more use to anyone, so it is not kept for the day the row stays.
 */
const FORGET_GRANT = 'provider_grant = NULL';

/** Ends the live OAuth grants of the sessions just ended (`?` = now): their refresh tokens die with them. */
const END_GRANTS_OF = (sessionIds: string) => `UPDATE oauth_grants SET revoked_at = ? WHERE revoked_at IS NULL AND session_id IN (${sessionIds})`;

export interface RotatedRow {
  hash: string;
  session_id: string;
  rotated_at: number;
}

export function toSession(row: SessionRow): Session {
  // Rows D1 kept have no group columns: read as null, like the object's rows without groups.
  const groups = row.groups ?? null;
  const readAt = row.groups_read_at ?? null;
  const subject = row.provider_subject ?? null;
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
    country: row.country ?? null,
    provider: row.provider,
    amr: parseList(row.amr),
    // Sessions from before the second-factor migration have no auth_time: they signed in when they began.
    authTime: row.auth_time ?? row.created_at,
    // Sessions of earlier versions, and of sign-ins without provider groups, carry none.
    groups: groups === null || readAt === null ? null : parseList(groups),
    groupsReadAt: groups === null ? null : readAt,
    groupSource: subject === null ? null : { subject, grant: row.provider_grant ?? null },
    providerSid: row.provider_sid ?? null,
  };
}

function parseList(text: string): string[] {
  try {
    const list: unknown = JSON.parse(text);
    return Array.isArray(list) ? list.filter((m): m is string => typeof m === 'string') : [];
  } catch {
    return [];
  }
}

/** Ended and expired sessions stay this long (the account page, a retried sign-out), then go. */
export const ENDED_SESSION_KEEP_S = 86_400;

/** What the account's deletion leaves in the object: what is still owed to others (apps' logout tokens, origins' notices). */
const OWED_TABLES = new Set(['oauth_logout_outbox', 'origin_logout_notices']);

/** Grant ids (`grt_…`): the fence ({@link UserSessions.isRevoked}) answers for these too. */
export const GRANT_ID_PREFIX = 'grt_';

export interface RotateRequest {
  /** SHA-256 of the presented refresh token's secret, and of its successor. */
  hash: string;
  newHash: string;
  now: number;
  refreshTtl: number;
  maxAge: number;
  /** Seconds during which a just-rotated token is a concurrent tab, not a theft. */
  grace: number;
  /**
   * GROUPS_MAX_AGE: a session whose groups are this old and can be re-read (a kept grant) is
   * not rotated but answered `stale_groups`, so they are re-read first. Null: rotate anyway.
   */
  groupsMaxAge: number | null;
  /** Where a session this rotation ends (a reuse) is told (config/routes-schema.ts `logoutNoticeTargets`). */
  notify?: readonly LogoutNoticeTarget[];
  /**
   * The session the token must belong to, when the caller knows it (a browser's access cookie
   * names it): a token of any other session, current or rotated, is `other_session` and
   * nothing changes (no rotation, no reuse ending).
   */
  sessionId?: string;
}

export type RotateOutcome =
  /** Unknown here, ended, idle past its expiry or past its absolute end. */
  | { kind: 'invalid' }
  /** Rotated less than `grace` ago and its session is live: a concurrent request won. */
  | { kind: 'conflict' }
  /** A rotated token presented again after the grace: its session is ended (now, or already). */
  | { kind: 'reused'; sessionId: string }
  | { kind: 'rotated'; session: Session }
  /** Nothing rotated: the session's groups are to be re-read first (see `groupsMaxAge`). */
  | { kind: 'stale_groups'; session: Session }
  /** Nothing changed: the token belongs to another session than `sessionId`. */
  | { kind: 'other_session' };

/**
 * A one-time code that hands a session to an app host (README "Hosts"): only its secret's
 * SHA-256 is kept, bound to the session, the app host's origin and the path to return to.
 */
export interface HostCodeRow {
  hash: string;
  session_id: string;
  origin: string;
  return_path: string;
  /** SHA-256 of the state the browser holds on the app host (http/cookies.ts SSO_STATE_COOKIE). */
  state_hash: string;
  created_at: number;
  expires_at: number;
}

export type HostCodeOutcome =
  /** No such code here. */
  | { kind: 'unknown' }
  /** Used before: a replay (the security event is the caller's). */
  | { kind: 'replayed'; sessionId: string }
  /** Presented on another origin than the one it was minted for (it is spent now). */
  | { kind: 'wrong_host'; sessionId: string }
  /** Presented without the state of the browser it was minted for (login CSRF, or a stolen code). */
  | { kind: 'wrong_browser'; sessionId: string }
  | { kind: 'expired'; sessionId: string }
  /** Its session has ended or expired. */
  | { kind: 'ended'; sessionId: string }
  | { kind: 'spent'; session: Session; returnPath: string };

/**
 * An authorization code's row (README "Apps (OpenID Connect)"): only its secret's SHA-256, the
 * session it was minted from, and what the token endpoint must check it against. `auth_time`
 * and `amr` are not given: the object copies them from the session when it stores the code.
 */
export interface AuthorizationCodeRow {
  hash: string;
  session_id: string;
  client_id: string;
  redirect_uri: string;
  scope: string;
  nonce: string | null;
  /** The S256 challenge (RFC 7636), base64url. */
  code_challenge: string;
  /** The RFC 8707 resource the tokens are for, or null (the userinfo endpoint). */
  resource: string | null;
  created_at: number;
  expires_at: number;
}

/**
 * A user's remembered consent to a client: the scopes granted and the RFC 8707 resources its
 * tokens may be for (each space-separated), and when.
 */
export interface ConsentRow {
  client_id: string;
  scope: string;
  resources: string;
  granted_at: number;
}

export abstract class UserSessions<E extends UserSessionsEnv = UserSessionsEnv> extends DurableObject<E> {
  private copied = false;

  /**
   * Signs and sends one logout token (the Worker's subclass: auth/backchannel-logout.ts), and
   * audits what became of it. Never throws for a client's fault; a throw counts as `failed`.
   */
  protected abstract deliverLogout(item: LogoutDelivery): Promise<LogoutOutcome>;

  constructor(ctx: DurableObjectState, env: E) {
    super(ctx, env);
    this.createTables();
    this.copied = this.meta('copied_from_d1') !== null;
  }

  private createTables(): void {
    const sql = this.ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      id TEXT PRIMARY KEY, user_id TEXT NOT NULL, refresh_hash TEXT NOT NULL UNIQUE, family TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, revoked_at INTEGER,
      user_agent TEXT, ip TEXT, provider TEXT, amr TEXT NOT NULL DEFAULT '[]', auth_time INTEGER,
      groups TEXT, groups_read_at INTEGER, provider_subject TEXT, provider_grant TEXT, provider_sid TEXT, country TEXT)`);
    // An object made by an earlier version has the table without the later columns: add them, once.
    const have = new Set(sql.exec<{ name: string }>('PRAGMA table_info(sessions)').toArray().map((c) => c.name));
    for (const [name, type] of ADDED_COLUMNS) {
      if (!have.has(name)) sql.exec(`ALTER TABLE sessions ADD COLUMN ${name} ${type}`);
    }
    sql.exec('CREATE TABLE IF NOT EXISTS rotated_refresh_tokens (hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, rotated_at INTEGER NOT NULL)');
    sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    sql.exec(`CREATE TABLE IF NOT EXISTS host_codes (
      hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, origin TEXT NOT NULL, return_path TEXT NOT NULL, state_hash TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER)`);
    // Gatehouse as an authorization server (README "Apps (OpenID Connect)"): each user's
    // authorization codes, the grants clients hold on a session (with their refresh tokens and
    // the hashes of rotated ones), and the consents the user gave. Secrets only as SHA-256.
    // A code remembers the grant it led to, so a replay can end what it issued.
    sql.exec(`CREATE TABLE IF NOT EXISTS oauth_codes (
      hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, scope TEXT NOT NULL,
      nonce TEXT, code_challenge TEXT NOT NULL, resource TEXT, auth_time INTEGER NOT NULL, amr TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER, grant_id TEXT)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS oauth_grants (
      id TEXT PRIMARY KEY, session_id TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL, resource TEXT,
      refresh_hash TEXT UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, revoked_at INTEGER,
      client_epoch TEXT)`);
    // The client's token epoch the grant was made under: a grant of an earlier version has none (and no refresh).
    if (!sql.exec<{ name: string }>('PRAGMA table_info(oauth_grants)').toArray().some((c) => c.name === 'client_epoch')) {
      sql.exec('ALTER TABLE oauth_grants ADD COLUMN client_epoch TEXT');
    }
    sql.exec('CREATE TABLE IF NOT EXISTS oauth_rotated_tokens (hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, rotated_at INTEGER NOT NULL)');
    sql.exec("CREATE TABLE IF NOT EXISTS oauth_consents (client_id TEXT PRIMARY KEY, scope TEXT NOT NULL, granted_at INTEGER NOT NULL, resources TEXT NOT NULL DEFAULT '')");
    // A consent stored before resources were part of it covers none: the user is asked again.
    if (!sql.exec<{ name: string }>('PRAGMA table_info(oauth_consents)').toArray().some((c) => c.name === 'resources')) {
      sql.exec("ALTER TABLE oauth_consents ADD COLUMN resources TEXT NOT NULL DEFAULT ''");
    }
    // Logout tokens owed to clients (back-channel logout): one per client and ended session,
    // written with the end, deleted once delivered, dropped or given up. `next_at` in Unix seconds.
    sql.exec(`CREATE TABLE IF NOT EXISTS oauth_logout_outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, client_id TEXT NOT NULL, session_id TEXT NOT NULL,
      attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, created_at INTEGER NOT NULL, UNIQUE (client_id, session_id))`);
    // Logout notices owed to origins (their routes' `logout_notify`): one per target and ended
    // session, written with the end, deleted once the queue has them. `next_at` in Unix seconds.
    sql.exec(`CREATE TABLE IF NOT EXISTS origin_logout_notices (
      id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, session_id TEXT NOT NULL, target TEXT NOT NULL,
      route TEXT NOT NULL, handoffs INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, created_at INTEGER NOT NULL, UNIQUE (target, session_id))`);
    // The revocation fence of earlier versions (same object, renamed class): read until it empties.
    sql.exec('CREATE TABLE IF NOT EXISTS revoked (sid TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)');
  }

  private meta(key: string): string | null {
    const row = this.ctx.storage.sql.exec<{ value: string }>('SELECT value FROM meta WHERE key = ?', key).toArray()[0];
    return row ? row.value : null;
  }

  private setMeta(key: string, value: string): void {
    this.ctx.storage.sql.exec('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
  }

  /**
   * Copies the user's sessions that earlier versions kept in D1, once. Nothing else runs in the
   * object meanwhile (blockConcurrencyWhile), so no call sees a half-copied state; a D1 failure
   * fails the call (503) and the next one tries again.
   */
  private async ready(userId: string): Promise<void> {
    if (this.copied) return;
    await this.ctx.blockConcurrencyWhile(async () => {
      if (this.meta('copied_from_d1') !== null) return;
      const db = this.env.DB;
      const [sessions, rotated] = await db.batch<SessionRow | RotatedRow>([
        db.prepare('SELECT * FROM sessions WHERE user_id = ?').bind(userId),
        db.prepare('SELECT r.hash, r.session_id, r.rotated_at FROM rotated_refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = ?').bind(userId),
      ]);
      this.ctx.storage.transactionSync(() => {
        for (const s of (sessions?.results ?? []) as SessionRow[]) this.insertRow(s);
        for (const r of (rotated?.results ?? []) as RotatedRow[]) {
          this.ctx.storage.sql.exec('INSERT OR IGNORE INTO rotated_refresh_tokens (hash, session_id, rotated_at) VALUES (?, ?, ?)', r.hash, r.session_id, r.rotated_at);
        }
        this.setMeta('copied_from_d1', String(Date.now()));
      });
      this.copied = true;
    });
    await this.scheduleCleanup();
  }

  private insertRow(s: SessionRow): void {
    this.ctx.storage.sql.exec(
      `INSERT OR IGNORE INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, revoked_at, user_agent, ip, provider, amr, auth_time,
         groups, groups_read_at, provider_subject, provider_grant, provider_sid, country)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      s.id, s.user_id, s.refresh_hash, s.family, s.created_at, s.expires_at, s.last_used_at, s.revoked_at, s.user_agent, s.ip, s.provider, s.amr, s.auth_time,
      s.groups ?? null, s.groups_read_at ?? null, s.provider_subject ?? null, s.provider_grant ?? null, s.provider_sid ?? null, s.country ?? null,
    );
  }

  private row(where: 'id' | 'refresh_hash', value: string): SessionRow | null {
    // A column name goes into the SQL text: only these two, whatever a caller sends.
    if (where !== 'id' && where !== 'refresh_hash') throw new RangeError('find by id or refresh_hash');
    return this.ctx.storage.sql.exec<SessionRow & Record<string, SqlStorageValue>>(`SELECT * FROM sessions WHERE ${where} = ?`, value).toArray()[0] ?? null;
  }

  /** A new session (only the sign-in pipeline calls this, through storage/sessions.ts). */
  async create(userId: string, row: SessionRow): Promise<void> {
    await this.ready(userId);
    this.insertRow(row);
    await this.scheduleCleanup();
  }

  /** The session with this id, or whose current refresh token has this hash; ended or not; or null. */
  async find(userId: string, by: 'id' | 'refresh_hash', value: string): Promise<Session | null> {
    await this.ready(userId);
    const row = this.row(by, value);
    return row ? toSession(row) : null;
  }

  /**
   * Rotates a refresh token, in one transaction: the current token of a live session gets a
   * successor (and its hash is kept as rotated); a rotated one is a conflict within the grace
   * while its session lives, and otherwise a reuse that ends the session.
   */
  async rotate(userId: string, r: RotateRequest): Promise<{ outcome: RotateOutcome }> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    const outcome = this.ctx.storage.transactionSync((): RotateOutcome => {
      const row = this.row('refresh_hash', r.hash);
      if (!row) {
        const rotated = sql.exec<{ session_id: string; rotated_at: number }>('SELECT session_id, rotated_at FROM rotated_refresh_tokens WHERE hash = ?', r.hash).toArray()[0];
        if (!rotated) return { kind: 'invalid' };
        if (r.sessionId !== undefined && rotated.session_id !== r.sessionId) return { kind: 'other_session' };
        const owner = this.row('id', rotated.session_id);
        const live = owner !== null && owner.revoked_at === null && owner.expires_at > r.now;
        if (live && rotated.rotated_at >= r.now - r.grace) return { kind: 'conflict' };
        const ended = sql.exec(`UPDATE sessions SET revoked_at = ?, ${FORGET_GRANT} WHERE id = ? AND revoked_at IS NULL RETURNING id`, r.now, rotated.session_id).toArray().length > 0;
        sql.exec(END_GRANTS_OF('?'), r.now, rotated.session_id);
        if (ended) this.queueLogouts([rotated.session_id], r.now, r.notify ?? []);
        return { kind: 'reused', sessionId: rotated.session_id };
      }
      if (r.sessionId !== undefined && row.id !== r.sessionId) return { kind: 'other_session' };
      const absoluteEnd = row.created_at + r.maxAge;
      if (row.revoked_at !== null || row.expires_at <= r.now || absoluteEnd <= r.now) return { kind: 'invalid' };
      const current = toSession(row);
      if (r.groupsMaxAge !== null && current.groupsReadAt !== null && current.groupsReadAt + r.groupsMaxAge <= r.now) return { kind: 'stale_groups', session: current };
      const expiresAt = Math.min(r.now + r.refreshTtl, absoluteEnd);
      sql.exec('UPDATE sessions SET refresh_hash = ?, expires_at = ?, last_used_at = ? WHERE id = ?', r.newHash, expiresAt, r.now, row.id);
      sql.exec('INSERT OR IGNORE INTO rotated_refresh_tokens (hash, session_id, rotated_at) VALUES (?, ?, ?)', r.hash, row.id, r.now);
      return { kind: 'rotated', session: toSession({ ...row, refresh_hash: r.newHash, expires_at: expiresAt, last_used_at: r.now }) };
    });
    this.setMeta('rotated_keep_s', String(r.refreshTtl));
    await this.scheduleCleanup();
    return { outcome };
  }

  /**
   * A step-up: new `amr` and `auth_time` for a live session within its absolute end. Returns
   * when it began and when its refresh token expires, or null (nothing changed).
   */
  async stepUp(userId: string, sessionId: string, amr: string[], authTime: number, maxAge: number): Promise<Pick<Session, 'createdAt' | 'expiresAt' | 'groups' | 'groupsReadAt'> | null> {
    await this.ready(userId);
    const row = this.ctx.storage.sql
      .exec<{ created_at: number; expires_at: number; groups: string | null; groups_read_at: number | null }>(
        'UPDATE sessions SET amr = ?, auth_time = ?, last_used_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ? AND created_at + ? > ? RETURNING created_at, expires_at, groups, groups_read_at',
        JSON.stringify(amr), authTime, authTime, sessionId, authTime, maxAge, authTime,
      )
      .toArray()[0];
    if (!row) return null;
    const { groups, groups_read_at: readAt } = row;
    const carried = groups !== null && readAt !== null ? { groups: parseList(groups), groupsReadAt: readAt } : { groups: null, groupsReadAt: null };
    return { createdAt: row.created_at, expiresAt: row.expires_at, ...carried };
  }

  /**
   * Stores groups just re-read for a live session, with the grant that read them, only if the
   * session still holds the grant `expected` (compare-and-set: of two concurrent re-reads the
   * first stored wins, and a rotated provider refresh token is never overwritten by a stale
   * one). `groups` null: the groups are no longer vouched for (they are dropped, and so is the
   * grant, which can no longer ask). True if stored.
   */
  async setGroups(userId: string, sessionId: string, expected: string | null, update: { groups: string[] | null; readAt: number; grant: string | null }): Promise<boolean> {
    await this.ready(userId);
    const groups = update.groups === null ? null : JSON.stringify(update.groups);
    return (
      this.ctx.storage.sql
        .exec('UPDATE sessions SET groups = ?, groups_read_at = ?, provider_grant = ? WHERE id = ? AND revoked_at IS NULL AND provider_grant IS ? RETURNING id', groups, update.groups === null ? null : update.readAt, update.grant, sessionId, expected)
        .toArray().length > 0
    );
  }

  /** Stores a host code for a session, only while that session is live; false if it is not. */
  async createHostCode(userId: string, code: HostCodeRow): Promise<boolean> {
    await this.ready(userId);
    const stored = this.ctx.storage.transactionSync(() => {
      const session = this.row('id', code.session_id);
      if (!session || session.revoked_at !== null || session.expires_at <= code.created_at) return false;
      this.ctx.storage.sql.exec(
        'INSERT INTO host_codes (hash, session_id, origin, return_path, state_hash, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)',
        code.hash, code.session_id, code.origin, code.return_path, code.state_hash, code.created_at, code.expires_at,
      );
      return true;
    });
    await this.scheduleCleanup();
    return stored;
  }

  /**
   * Spends a host code, in one transaction: whatever the outcome, a known code is used once
   * (one presented on the wrong origin, or too late, cannot be tried again elsewhere).
   */
  async spendHostCode(userId: string, hash: string, origin: string, stateHash: string, now: number): Promise<{ outcome: HostCodeOutcome }> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    const outcome = this.ctx.storage.transactionSync((): HostCodeOutcome => {
      const code = sql.exec<HostCodeRow & { used_at: number | null } & Record<string, SqlStorageValue>>('SELECT * FROM host_codes WHERE hash = ?', hash).toArray()[0];
      if (!code) return { kind: 'unknown' };
      const sessionId = code.session_id;
      if (code.used_at !== null) return { kind: 'replayed', sessionId };
      sql.exec('UPDATE host_codes SET used_at = ? WHERE hash = ?', now, hash);
      if (code.origin !== origin) return { kind: 'wrong_host', sessionId };
      if (code.state_hash !== stateHash) return { kind: 'wrong_browser', sessionId };
      if (code.expires_at <= now) return { kind: 'expired', sessionId };
      const session = this.row('id', sessionId);
      if (!session || session.revoked_at !== null || session.expires_at <= now) return { kind: 'ended', sessionId };
      return { kind: 'spent', session: toSession(session), returnPath: code.return_path };
    });
    return { outcome };
  }

  /**
   * Stores an authorization code for a session, only while that session is live, with the
   * session's own `auth_time` and `amr` (what the ID token will say); false if it is not live.
   */
  async createAuthorizationCode(userId: string, code: AuthorizationCodeRow): Promise<boolean> {
    await this.ready(userId);
    const stored = this.ctx.storage.transactionSync(() => {
      const session = this.row('id', code.session_id);
      if (!session || session.revoked_at !== null || session.expires_at <= code.created_at) return false;
      const s = toSession(session);
      this.ctx.storage.sql.exec(
        `INSERT INTO oauth_codes (hash, session_id, client_id, redirect_uri, scope, nonce, code_challenge, resource, auth_time, amr, created_at, expires_at, used_at, grant_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
        code.hash, code.session_id, code.client_id, code.redirect_uri, code.scope, code.nonce, code.code_challenge, code.resource,
        s.authTime, JSON.stringify(s.amr), code.created_at, code.expires_at,
      );
      return true;
    });
    await this.scheduleCleanup();
    return stored;
  }

  /** Spends an authorization code once, creating its grant (user-sessions-grants.ts `spendCode`). */
  async spendAuthorizationCode(userId: string, r: SpendCodeRequest): Promise<{ outcome: SpendCodeOutcome }> {
    await this.ready(userId);
    const grants = await import('./user-sessions-grants');
    const outcome = this.ctx.storage.transactionSync(() => grants.spendCode(this.ctx.storage.sql, r));
    await this.scheduleCleanup();
    return { outcome };
  }

  /** Rotates a grant's refresh token with reuse detection (user-sessions-grants.ts `rotateGrantToken`). */
  async rotateGrant(userId: string, r: RotateGrantRequest): Promise<{ outcome: RotateGrantOutcome }> {
    await this.ready(userId);
    const grants = await import('./user-sessions-grants');
    const outcome = this.ctx.storage.transactionSync(() => grants.rotateGrantToken(this.ctx.storage.sql, r));
    await this.scheduleCleanup();
    return { outcome };
  }

  /** Ends the grant a refresh token (current or rotated) belongs to, if `clientId`'s (RFC 7009). */
  async endGrantByRefresh(userId: string, hash: string, clientId: string, now: number): Promise<{ outcome: EndGrantOutcome }> {
    await this.ready(userId);
    const grants = await import('./user-sessions-grants');
    return { outcome: this.ctx.storage.transactionSync(() => grants.endByRefresh(this.ctx.storage.sql, hash, clientId, now)) };
  }

  /** Ends one grant of `clientId` (an access token's revocation, RFC 7009). True if it is this user's and that client's. */
  async endGrant(userId: string, grantId: string, clientId: string, now: number): Promise<boolean> {
    await this.ready(userId);
    return this.ctx.storage.sql.exec('UPDATE oauth_grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND client_id = ? RETURNING id', now, grantId, clientId).toArray().length > 0;
  }

  /** The consent the user gave `clientId`, or null. */
  async findConsent(userId: string, clientId: string): Promise<ConsentRow | null> {
    await this.ready(userId);
    return this.ctx.storage.sql.exec<ConsentRow & Record<string, SqlStorageValue>>('SELECT client_id, scope, resources, granted_at FROM oauth_consents WHERE client_id = ?', clientId).toArray()[0] ?? null;
  }

  /** Remembers a consent: the scopes and resources already granted to the client and `scopes` and `resources`, from now. */
  async grantConsent(userId: string, clientId: string, scopes: string[], resources: string[], now: number): Promise<void> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    const merged = (before: string | undefined, added: string[]) => [...new Set([...(before ? before.split(' ').filter(Boolean) : []), ...added])].sort().join(' ');
    this.ctx.storage.transactionSync(() => {
      const before = sql.exec<{ scope: string; resources: string }>('SELECT scope, resources FROM oauth_consents WHERE client_id = ?', clientId).toArray()[0];
      sql.exec(
        `INSERT INTO oauth_consents (client_id, scope, resources, granted_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (client_id) DO UPDATE SET scope = excluded.scope, resources = excluded.resources, granted_at = excluded.granted_at`,
        clientId, merged(before?.scope, scopes), merged(before?.resources, resources), now,
      );
    });
  }

  /** Every consent the user gave, most recent first. */
  async listConsents(userId: string): Promise<ConsentRow[]> {
    await this.ready(userId);
    return this.ctx.storage.sql.exec<ConsentRow & Record<string, SqlStorageValue>>('SELECT client_id, scope, resources, granted_at FROM oauth_consents ORDER BY granted_at DESC LIMIT 200').toArray();
  }

  /**
   * Withdraws the consent to `clientId`, in one transaction: the consent goes, every grant of
   * that client on any of the user's sessions is ended, and its unspent codes go. Returns
   * whether there was a consent, the ids of the grants this call ended, and those of every
   * grant of that client ended in the last `accessTtl` seconds, this call's included: their
   * access tokens may still verify, so the caller revokes them in KV (again, for a retry after
   * a failed KV write).
   */
  async revokeConsent(userId: string, clientId: string, now: number, accessTtl: number): Promise<{ hadConsent: boolean; grantIds: string[]; withLiveTokens: string[] }> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    return this.ctx.storage.transactionSync(() => {
      const hadConsent = sql.exec('DELETE FROM oauth_consents WHERE client_id = ? RETURNING client_id', clientId).toArray().length > 0;
      const grantIds = sql.exec<{ id: string }>('UPDATE oauth_grants SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL RETURNING id', now, clientId).toArray().map((r) => r.id);
      sql.exec('DELETE FROM oauth_codes WHERE client_id = ? AND used_at IS NULL', clientId);
      const withLiveTokens = sql.exec<{ id: string }>('SELECT id FROM oauth_grants WHERE client_id = ? AND revoked_at >= ?', clientId, now - accessTtl).toArray().map((r) => r.id);
      return { hadConsent, grantIds, withLiveTokens };
    });
  }

  /** Ends the sessions that are still live; returns the ids this call ended. */
  async end(userId: string, sessionIds: string[], now: number, notify: readonly LogoutNoticeTarget[] = []): Promise<string[]> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    const ended = this.ctx.storage.transactionSync(() => {
      const ids = sessionIds.filter((id) => sql.exec(`UPDATE sessions SET revoked_at = ?, ${FORGET_GRANT} WHERE id = ? AND revoked_at IS NULL RETURNING id`, now, id).toArray().length > 0);
      // Also the grants of sessions ended before (a retry): ending is idempotent.
      for (const id of sessionIds) sql.exec(END_GRANTS_OF('?'), now, id);
      this.queueLogouts(ids, now, notify);
      return ids;
    });
    await this.scheduleCleanup();
    return ended;
  }

  /**
   * Ends every live session. Returns the ids this call ended, and every session whose access
   * tokens may still verify (not ended, or ended in the last `accessTtl` seconds, and not
   * expired longer ago than that): those KV must (again) revoke.
   */
  async endAll(userId: string, now: number, accessTtl: number, notify: readonly LogoutNoticeTarget[] = []): Promise<{ ended: string[]; withLiveTokens: string[] }> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    const result = this.ctx.storage.transactionSync(() => {
      const ended = sql.exec<{ id: string }>(`UPDATE sessions SET revoked_at = ?, ${FORGET_GRANT} WHERE revoked_at IS NULL AND expires_at > ? RETURNING id`, now, now).toArray().map((r) => r.id);
      sql.exec(END_GRANTS_OF('SELECT id FROM sessions WHERE revoked_at IS NOT NULL OR expires_at <= ?'), now, now);
      this.queueLogouts(ended, now, notify);
      return { ended, withLiveTokens: this.liveTokenIds(now, accessTtl) };
    });
    await this.scheduleCleanup();
    return result;
  }

  /**
   * Owes a logout token to each client that holds a grant on these sessions (ended or not,
   * created by `now`), once per client and session, and a notice to each origin's target, once
   * per target and session: called in the transaction that ends them.
   */
  private queueLogouts(sessionIds: readonly string[], now: number, notify: readonly LogoutNoticeTarget[]): void {
    for (const id of sessionIds) {
      for (const n of notify) {
        this.ctx.storage.sql.exec(
          `INSERT OR IGNORE INTO origin_logout_notices (user_id, session_id, target, route, handoffs, next_at, created_at)
           SELECT user_id, id, ?, ?, 0, ?, ? FROM sessions WHERE id = ?`,
          n.target, n.route, now, now, id,
        );
      }
      this.ctx.storage.sql.exec(
        `INSERT OR IGNORE INTO oauth_logout_outbox (user_id, client_id, session_id, attempts, next_at, created_at)
         SELECT DISTINCT s.user_id, g.client_id, g.session_id, 0, ?, ? FROM oauth_grants g JOIN sessions s ON s.id = g.session_id
         WHERE g.session_id = ? AND g.created_at <= ?`,
        now, now, id, now,
      );
    }
  }

  /** Sessions whose access tokens may still verify (see {@link endAll}). */
  async withLiveTokens(userId: string, now: number, accessTtl: number): Promise<string[]> {
    await this.ready(userId);
    return this.liveTokenIds(now, accessTtl);
  }

  private liveTokenIds(now: number, accessTtl: number): string[] {
    return this.ctx.storage.sql
      .exec<{ id: string }>('SELECT id FROM sessions WHERE (revoked_at IS NULL OR revoked_at >= ?) AND expires_at > ?', now - accessTtl, now - accessTtl)
      .toArray()
      .map((r) => r.id);
  }

  /** The live sessions started from `provider` (user-sessions-provider.ts `providerSessions`): its back-channel logout. */
  async providerSessions(userId: string, provider: string, providerSid: string | null, now: number): Promise<string[]> {
    await this.ready(userId);
    return (await import('./user-sessions-provider')).providerSessions(this.ctx.storage.sql, provider, providerSid, now);
  }

  /** Live sessions, most recently used first (at most {@link LISTED_SESSIONS_MAX}). */
  async list(userId: string, now: number): Promise<Session[]> {
    await this.ready(userId);
    return this.ctx.storage.sql
      .exec<SessionRow & Record<string, SqlStorageValue>>('SELECT * FROM sessions WHERE revoked_at IS NULL AND expires_at > ? ORDER BY last_used_at DESC LIMIT ?', now, LISTED_SESSIONS_MAX)
      .toArray()
      .map(toSession);
  }

  /**
   * The fence: true unless the session is here and not ended. A session this object does not
   * know (another user's id, one long gone) is refused too: no live token can name it.
   */
  async isRevoked(userId: string, sessionId: string): Promise<boolean> {
    await this.ready(userId);
    // A grant (`grt_…`, an OAuth client's tokens): revoked unless it and its session are live.
    if (sessionId.startsWith(GRANT_ID_PREFIX)) return !(await import('./user-sessions-grants')).liveGrant(this.ctx.storage.sql, sessionId, Math.floor(Date.now() / 1000));
    const fencedBefore = this.ctx.storage.sql.exec('SELECT 1 FROM revoked WHERE sid = ? AND until_ms > ?', sessionId, Date.now()).toArray().length > 0;
    const row = this.row('id', sessionId);
    return fencedBefore || row === null || row.revoked_at !== null;
  }

  /**
   * The account is being deleted: everything here goes (its sessions were ended first), but the
   * logout tokens still owed to clients, which the alarm delivers as before. A session id this
   * object no longer knows counts as ended ({@link isRevoked}), so the fence holds for any token
   * still in flight. One transaction: a failure part-way leaves everything as it was.
   */
  async forget(userId: string, notify: readonly LogoutNoticeTarget[] = []): Promise<void> {
    await this.ready(userId);
    const sql = this.ctx.storage.sql;
    const now = nowSeconds();
    this.ctx.storage.transactionSync(() => {
      // A session still live ends here (and owes its clients their logout) before it goes.
      this.queueLogouts(sql.exec<{ id: string }>('UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL RETURNING id', now).toArray().map((r) => r.id), now, notify);
      const tables = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT GLOB 'sqlite_*' AND name NOT GLOB '_cf_*'").toArray();
      for (const { name } of tables) {
        if (!OWED_TABLES.has(name)) sql.exec(`DELETE FROM "${name.replaceAll('"', '""')}"`);
      }
      // Empty again, but never copied into again: D1 may still hold this user's sessions of earlier
      // versions as live (their end was recorded here), until the account's D1 delete runs.
      this.setMeta('copied_from_d1', String(Date.now()));
    });
    this.copied = true;
    await this.ctx.storage.deleteAlarm();
    await this.scheduleCleanup();
  }

  /**
   * Sets the alarm for the earliest moment a row may go, unless one is set sooner: a session's,
   * or a host code's (a day after its expiry, though its session may live on for a month); or
   * for the first logout token or origin notice due. (SQLite in the object allows five terms in a
   * compound SELECT: what is owed to others is one term.)
   */
  private async scheduleCleanup(): Promise<void> {
    const next = this.ctx.storage.sql
      .exec<{ at: number | null }>(
        `SELECT MIN(at) AS at FROM (
           SELECT MIN(COALESCE(MIN(revoked_at, expires_at), expires_at)) + ?1 AS at FROM sessions
           UNION ALL SELECT MIN(expires_at) + ?1 AS at FROM host_codes
           UNION ALL SELECT MIN(expires_at) + ?1 AS at FROM oauth_codes
           UNION ALL SELECT MIN(COALESCE(MIN(revoked_at, expires_at), expires_at)) + ?1 AS at FROM oauth_grants
           UNION ALL SELECT MIN(next_at) AS at FROM (SELECT next_at FROM oauth_logout_outbox UNION ALL SELECT next_at FROM origin_logout_notices))`,
        ENDED_SESSION_KEEP_S,
      )
      .toArray()[0]?.at;
    if (next === null || next === undefined) return;
    const atMs = next * 1000;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > atMs) await this.ctx.storage.setAlarm(atMs);
  }

  /** Housekeeping: sessions ended or expired more than a day ago, their rotated tokens, host codes a day past expiry; the same for OAuth codes and grants. */
  override async alarm(): Promise<void> {
    const nowS = Math.floor(Date.now() / 1000);
    const before = nowS - ENDED_SESSION_KEEP_S;
    const keepRotated = Number(this.meta('rotated_keep_s') ?? '0');
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      sql.exec('DELETE FROM sessions WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?)', before, before);
      sql.exec('DELETE FROM rotated_refresh_tokens WHERE session_id NOT IN (SELECT id FROM sessions)');
      // Used codes stay a day past their expiry, so a replay is still told apart from a made-up code.
      // `<=`: the alarm is due exactly then, and must not find the code still there and come again.
      sql.exec('DELETE FROM host_codes WHERE expires_at <= ? OR session_id NOT IN (SELECT id FROM sessions)', before);
      if (keepRotated > 0) sql.exec('DELETE FROM rotated_refresh_tokens WHERE rotated_at < ?', nowS - keepRotated);
      // OAuth: codes as host codes; grants ended or expired a day ago, and those of sessions gone;
      // rotated refresh tokens with their grants. Consents stay until withdrawn.
      sql.exec('DELETE FROM oauth_codes WHERE expires_at <= ? OR session_id NOT IN (SELECT id FROM sessions)', before);
      sql.exec('DELETE FROM oauth_grants WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?) OR session_id NOT IN (SELECT id FROM sessions)', before, before);
      sql.exec('DELETE FROM oauth_rotated_tokens WHERE grant_id NOT IN (SELECT id FROM oauth_grants)');
      sql.exec('DELETE FROM revoked WHERE until_ms <= ?', Date.now());
    });
    // Origins' notices due: handed to the queue, whose consumer delivers them (first: one quick
    // call, not behind the apps' deliveries, which may each wait on a slow client).
    if (sql.exec('SELECT 1 FROM origin_logout_notices WHERE next_at <= ? LIMIT 1', nowS).toArray().length > 0) {
      const { handOffDueNotices } = await import('./logout-notices');
      await handOffDueNotices(this.ctx.storage, this.env.LOGOUT_NOTICES, nowS);
    }
    // Logout tokens due: their delivery loop is loaded only when some are (alarms are rare).
    if (sql.exec('SELECT 1 FROM oauth_logout_outbox WHERE next_at <= ? LIMIT 1', nowS).toArray().length > 0) {
      const { deliverDueLogouts } = await import('./logout-outbox');
      await deliverDueLogouts(this.ctx.storage, (item) => this.deliverLogout(item), nowS);
    }
    await this.scheduleCleanup();
  }

}

/** The binding's type (`USER_SESSIONS` in wrangler.toml). */
export type UserSessionsNamespace = DurableObjectNamespace<UserSessions>;

/** Where a user's sessions live: the binding and whose object. */
export interface SessionStore {
  ns: UserSessionsNamespace;
  userId: string;
  /** Where the ends of sessions are told (the routes' `logout_notify`); none if absent. */
  notify?: readonly LogoutNoticeTarget[];
}

export const sessionsStub = (s: SessionStore) => s.ns.get(s.ns.idFromName(s.userId));
