/**
 * The `scim_tokens` table: bearer tokens an administrator created for the directory (README
 * "SCIM provisioning"). A secret is kept only as the SHA-256 of 256 random bits the gateway
 * generated (no slow hash is needed), the previous one until the end of its rotation overlap.
 */
import { guard } from './errors';

export interface ScimToken {
  /** `scim_<random>`: the part of the token before the dot, by which its row is found. */
  id: string;
  name: string;
  /** SHA-256 (base64url) of the current secret. */
  secretHash: string;
  /** The secret before the last rotation, valid until `previousSecretExpiresAt` (Unix seconds). */
  previousSecretHash: string | null;
  previousSecretExpiresAt: number | null;
  /** The administrator who created it. */
  createdBy: string | null;
  createdAt: number;
  updatedAt: number;
  /** When a request last authenticated with it, to the minute. */
  lastUsedAt: number | null;
  disabledAt: number | null;
}

interface ScimTokenRow {
  id: string;
  name: string;
  secret_hash: string;
  previous_secret_hash: string | null;
  previous_secret_expires_at: number | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
  disabled_at: number | null;
}

function toScimToken(row: ScimTokenRow): ScimToken {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    previousSecretHash: row.previous_secret_hash,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastUsedAt: row.last_used_at,
    disabledAt: row.disabled_at,
  };
}

/** The token with this id (enabled or not), read on the primary, or null. */
export async function findScimTokenById(db: D1Database, id: string): Promise<ScimToken | null> {
  const row = await guard(() => db.prepare('SELECT * FROM scim_tokens WHERE id = ?').bind(id).first<ScimTokenRow>());
  return row ? toScimToken(row) : null;
}

/** Whether any token exists (enabled or disabled): one row looked at, not the table. */
export async function scimTokensExist(db: D1Database): Promise<boolean> {
  const row = await guard(() => db.prepare('SELECT 1 AS found FROM scim_tokens LIMIT 1').first<{ found: number }>());
  return row !== null;
}

/** Stores a new token; false if its id is taken. */
export async function insertScimToken(db: D1Database, token: ScimToken): Promise<boolean> {
  const result = await guard(() =>
    db
      .prepare(
        `INSERT INTO scim_tokens (id, name, secret_hash, previous_secret_hash, previous_secret_expires_at, created_by, created_at, updated_at, last_used_at, disabled_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(token.id, token.name, token.secretHash, token.previousSecretHash, token.previousSecretExpiresAt, token.createdBy, token.createdAt, token.updatedAt, token.lastUsedAt, token.disabledAt)
      .run(),
  );
  return result.meta.changes > 0;
}

/** Every token, newest first (there are a handful: one or two per directory). */
export async function listScimTokens(db: D1Database, { limit, offset }: { limit: number; offset: number }): Promise<ScimToken[]> {
  const { results } = await guard(() => db.prepare('SELECT * FROM scim_tokens ORDER BY created_at DESC, id LIMIT ? OFFSET ?').bind(limit, offset).all<ScimTokenRow>());
  return results.map(toScimToken);
}

/**
 * Replaces the secret whose hash is `currentHash` with `newHash`; the old one stays valid until
 * `previousExpiresAt` (null: not at all). False if the secret changed meanwhile (a concurrent
 * rotation: nothing is overwritten) or the token is gone.
 */
export async function rotateScimTokenSecret(db: D1Database, id: string, currentHash: string, newHash: string, previousExpiresAt: number | null, now: number): Promise<boolean> {
  const result = await guard(() =>
    db
      .prepare('UPDATE scim_tokens SET secret_hash = ?, previous_secret_hash = ?, previous_secret_expires_at = ?, updated_at = ? WHERE id = ? AND secret_hash = ?')
      .bind(newHash, previousExpiresAt === null ? null : currentHash, previousExpiresAt, now, id, currentHash)
      .run(),
  );
  return result.meta.changes > 0;
}

/** Disables (`disabledAt` a time; an earlier one is kept) or enables (null) the token; false if it is gone. */
export async function setScimTokenDisabled(db: D1Database, id: string, disabledAt: number | null, now: number): Promise<boolean> {
  const result = await guard(() =>
    db.prepare('UPDATE scim_tokens SET disabled_at = CASE WHEN ? IS NULL THEN NULL ELSE COALESCE(disabled_at, ?) END, updated_at = ? WHERE id = ?').bind(disabledAt, disabledAt, now, id).run(),
  );
  return result.meta.changes > 0;
}

/** Deletes the token; false if it was already gone. */
export async function deleteScimToken(db: D1Database, id: string): Promise<boolean> {
  const result = await guard(() => db.prepare('DELETE FROM scim_tokens WHERE id = ?').bind(id).run());
  return result.meta.changes > 0;
}

/**
 * Records a use at `now` unless one at or after `since` is already recorded (another isolate
 * wrote it meanwhile): the caller writes only when the row it read was older.
 */
export async function recordScimTokenUse(db: D1Database, id: string, now: number, since: number): Promise<void> {
  await guard(() => db.prepare('UPDATE scim_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)').bind(now, id, since).run());
}
