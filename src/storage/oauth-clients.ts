/**
 * The `oauth_clients` table: apps and machines that use Gatehouse as their authorization
 * server (README "Apps (OpenID Connect)", "Machines"). Lists are stored as JSON arrays; a
 * secret only as the SHA-256 of a high-entropy value the gateway generated (no slow hash is
 * needed for 256 random bits), the previous one until the end of its rotation overlap.
 */
import { guard } from './errors';

export type ClientKind = 'confidential' | 'public';
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
export type ClientGrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';

export interface OAuthClient {
  id: string;
  name: string;
  kind: ClientKind;
  authMethod: ClientAuthMethod;
  /** SHA-256 (base64url) of the current secret; null for public and private_key_jwt clients. */
  secretHash: string | null;
  /** The secret before the last rotation, valid until `previousSecretExpiresAt` (Unix seconds). */
  previousSecretHash: string | null;
  previousSecretExpiresAt: number | null;
  /** The client's public keys (a JWK Set, parsed) for private_key_jwt; null otherwise. */
  jwks: { keys: unknown[] } | null;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: ClientGrantType[];
  allowedScopes: string[];
  /** Resources (RFC 8707) its tokens may be for: MCP resources, a service's audiences. */
  allowedAudiences: string[];
  backchannelLogoutUri: string | null;
  /** An app of the operator's own: no consent page. */
  firstParty: boolean;
  source: 'admin' | 'dynamic';
  /** Part of every service token's session id: a new epoch revokes every token issued before. */
  tokenEpoch: string;
  createdAt: number;
  updatedAt: number;
  disabledAt: number | null;
}

export interface OAuthClientRow {
  id: string;
  name: string;
  kind: ClientKind;
  auth_method: ClientAuthMethod;
  secret_hash: string | null;
  previous_secret_hash: string | null;
  previous_secret_expires_at: number | null;
  jwks: string | null;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string;
  allowed_scopes: string;
  allowed_audiences: string;
  backchannel_logout_uri: string | null;
  first_party: number;
  source: 'admin' | 'dynamic';
  token_epoch: string;
  created_at: number;
  updated_at: number;
  disabled_at: number | null;
}

function stringList(text: string): string[] {
  try {
    const list: unknown = JSON.parse(text);
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function jwkSet(text: string | null): { keys: unknown[] } | null {
  if (text === null) return null;
  try {
    const set: unknown = JSON.parse(text);
    const keys: unknown = set && typeof set === 'object' && 'keys' in set ? set.keys : undefined;
    return Array.isArray(keys) ? { keys } : null;
  } catch {
    return null;
  }
}

const GRANT_TYPES: ReadonlySet<string> = new Set<ClientGrantType>(['authorization_code', 'refresh_token', 'client_credentials']);

export function toClient(r: OAuthClientRow): OAuthClient {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    authMethod: r.auth_method,
    secretHash: r.secret_hash,
    previousSecretHash: r.previous_secret_hash,
    previousSecretExpiresAt: r.previous_secret_expires_at,
    jwks: jwkSet(r.jwks),
    redirectUris: stringList(r.redirect_uris),
    postLogoutRedirectUris: stringList(r.post_logout_redirect_uris),
    grantTypes: stringList(r.grant_types).filter((g): g is ClientGrantType => GRANT_TYPES.has(g)),
    allowedScopes: stringList(r.allowed_scopes),
    allowedAudiences: stringList(r.allowed_audiences),
    backchannelLogoutUri: r.backchannel_logout_uri,
    firstParty: r.first_party === 1,
    source: r.source,
    tokenEpoch: r.token_epoch,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    disabledAt: r.disabled_at,
  };
}

export function toClientRow(c: OAuthClient): OAuthClientRow {
  return {
    id: c.id,
    name: c.name,
    kind: c.kind,
    auth_method: c.authMethod,
    secret_hash: c.secretHash,
    previous_secret_hash: c.previousSecretHash,
    previous_secret_expires_at: c.previousSecretExpiresAt,
    jwks: c.jwks === null ? null : JSON.stringify(c.jwks),
    redirect_uris: JSON.stringify(c.redirectUris),
    post_logout_redirect_uris: JSON.stringify(c.postLogoutRedirectUris),
    grant_types: JSON.stringify(c.grantTypes),
    allowed_scopes: JSON.stringify(c.allowedScopes),
    allowed_audiences: JSON.stringify(c.allowedAudiences),
    backchannel_logout_uri: c.backchannelLogoutUri,
    first_party: c.firstParty ? 1 : 0,
    source: c.source,
    token_epoch: c.tokenEpoch,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    disabled_at: c.disabledAt,
  };
}

/** The client with this id (enabled or not), or null. */
export async function findClientById(db: D1Database, id: string): Promise<OAuthClient | null> {
  const row = await guard(() => db.prepare('SELECT * FROM oauth_clients WHERE id = ?').bind(id).first<OAuthClientRow>());
  return row ? toClient(row) : null;
}

const COLUMNS = [
  'id', 'name', 'kind', 'auth_method', 'secret_hash', 'previous_secret_hash', 'previous_secret_expires_at', 'jwks', 'redirect_uris',
  'post_logout_redirect_uris', 'grant_types', 'allowed_scopes', 'allowed_audiences', 'backchannel_logout_uri', 'first_party', 'source',
  'token_epoch', 'created_at', 'updated_at', 'disabled_at',
] as const satisfies readonly (keyof OAuthClientRow)[];

/** Stores a new client; false if the id is taken. */
export async function insertClient(db: D1Database, client: OAuthClient): Promise<boolean> {
  const row = toClientRow(client);
  const result = await guard(() =>
    db
      .prepare(`INSERT OR IGNORE INTO oauth_clients (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`)
      .bind(...COLUMNS.map((k) => row[k]))
      .run(),
  );
  return result.meta.changes > 0;
}

/**
 * What a client is for, as the console sorts them: a `public` client (a native or browser app
 * that keeps no secret), an `app` (a confidential client people sign in to: the
 * authorization_code grant), or a `service` (a confidential client without it: a machine).
 */
export type ClientClass = 'app' | 'public' | 'service';

export function clientClass(client: Pick<OAuthClient, 'kind' | 'grantTypes'>): ClientClass {
  if (client.kind === 'public') return 'public';
  return client.grantTypes.includes('authorization_code') ? 'app' : 'service';
}

/** The SQL condition of each class: the same rule as {@link clientClass}, on the stored columns. */
const CLASS_CONDITION: Record<ClientClass, string> = {
  public: "kind = 'public'",
  app: `kind = 'confidential' AND EXISTS (SELECT 1 FROM json_each(grant_types) WHERE value = 'authorization_code')`,
  service: `kind = 'confidential' AND NOT EXISTS (SELECT 1 FROM json_each(grant_types) WHERE value = 'authorization_code')`,
};

/** Every client (or those of one class), newest first, a page at a time. */
export async function listClients(db: D1Database, { limit, offset, ofClass }: { limit: number; offset: number; ofClass?: ClientClass }): Promise<OAuthClient[]> {
  const where = ofClass ? `WHERE ${CLASS_CONDITION[ofClass]}` : '';
  const { results } = await guard(() =>
    db.prepare(`SELECT * FROM oauth_clients ${where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`).bind(limit, offset).all<OAuthClientRow>(),
  );
  return results.map(toClient);
}

/** The metadata an admin may change (not the kind, authentication method, secret or epoch). */
export type ClientMetadataChange = Pick<
  OAuthClient,
  'name' | 'jwks' | 'redirectUris' | 'postLogoutRedirectUris' | 'grantTypes' | 'allowedScopes' | 'allowedAudiences' | 'backchannelLogoutUri' | 'firstParty'
>;

/** Stores changed metadata; false if the client is gone. */
export async function updateClientMetadata(db: D1Database, id: string, change: ClientMetadataChange, now: number): Promise<boolean> {
  const result = await guard(() =>
    db
      .prepare(
        `UPDATE oauth_clients SET name = ?, jwks = ?, redirect_uris = ?, post_logout_redirect_uris = ?, grant_types = ?, allowed_scopes = ?,
         allowed_audiences = ?, backchannel_logout_uri = ?, first_party = ?, updated_at = ? WHERE id = ?`,
      )
      .bind(
        change.name,
        change.jwks === null ? null : JSON.stringify(change.jwks),
        JSON.stringify(change.redirectUris),
        JSON.stringify(change.postLogoutRedirectUris),
        JSON.stringify(change.grantTypes),
        JSON.stringify(change.allowedScopes),
        JSON.stringify(change.allowedAudiences),
        change.backchannelLogoutUri,
        change.firstParty ? 1 : 0,
        now,
        id,
      )
      .run(),
  );
  return result.meta.changes > 0;
}

/**
 * Replaces the secret whose hash is `currentHash` with `newHash`; the old one stays valid until
 * `previousExpiresAt` (null: not at all). False if the secret changed meanwhile (a concurrent
 * rotation: nothing is overwritten) or the client is gone.
 */
export async function rotateClientSecret(
  db: D1Database,
  id: string,
  currentHash: string,
  newHash: string,
  previousExpiresAt: number | null,
  now: number,
): Promise<boolean> {
  const result = await guard(() =>
    db
      .prepare(
        `UPDATE oauth_clients SET secret_hash = ?, previous_secret_hash = ?, previous_secret_expires_at = ?, updated_at = ?
         WHERE id = ? AND secret_hash = ?`,
      )
      .bind(newHash, previousExpiresAt === null ? null : currentHash, previousExpiresAt, now, id, currentHash)
      .run(),
  );
  return result.meta.changes > 0;
}

/**
 * Disables the client and moves it from token epoch `fromEpoch` to `toEpoch`, so that every
 * token issued under the old epoch is revoked. False if the epoch moved meanwhile.
 */
export async function disableClient(db: D1Database, id: string, fromEpoch: string, toEpoch: string, now: number): Promise<boolean> {
  const result = await guard(() =>
    db
      .prepare('UPDATE oauth_clients SET disabled_at = COALESCE(disabled_at, ?), token_epoch = ?, updated_at = ? WHERE id = ? AND token_epoch = ?')
      .bind(now, toEpoch, now, id, fromEpoch)
      .run(),
  );
  return result.meta.changes > 0;
}

/** Enables the client again (its epoch stays: the tokens revoked by disabling stay revoked). */
export async function enableClient(db: D1Database, id: string, now: number): Promise<boolean> {
  const result = await guard(() => db.prepare('UPDATE oauth_clients SET disabled_at = NULL, updated_at = ? WHERE id = ?').bind(now, id).run());
  return result.meta.changes > 0;
}

/**
 * Records a client assertion's `jti` until `expiresAt`; false if this client already used it
 * (a replay). The client's expired `jti`s are deleted in the same batch.
 */
export async function useAssertionJti(db: D1Database, clientId: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
  const [, inserted] = await guard(() =>
    db.batch([
      db.prepare('DELETE FROM client_assertion_jtis WHERE client_id = ? AND expires_at < ?').bind(clientId, now),
      db.prepare('INSERT OR IGNORE INTO client_assertion_jtis (client_id, jti, expires_at) VALUES (?, ?, ?)').bind(clientId, jti, expiresAt),
    ]),
  );
  return (inserted?.meta.changes ?? 0) > 0;
}
