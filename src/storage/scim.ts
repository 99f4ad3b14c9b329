/**
 * What SCIM provisioning keeps (migrations/0011_scim.sql): a user's directory id
 * (`scim_external_id`) and since when the directory manages the account (`scim_managed_at`: it
 * created, wrote or grouped it), and the directory's
 * groups with their members. Every change that touches more than one row is one D1 batch.
 */
import { randomId } from '../util/random';
import { guard } from './errors';
import { ANOTHER_ENABLED_ADMIN, anotherEnabledAdminArgs } from './account-changes';
import { normaliseEmail, toUser, type User } from './users';

export interface ScimUserRecord {
  user: User;
  externalId: string | null;
  /** Disabled by the directory (not by the administrator): only then may the directory enable it. */
  disabledByDirectory: boolean;
}

type UserRowWithScim = Parameters<typeof toUser>[0] & { scim_external_id: string | null; scim_disabled_at: number | null };

const toRecord = (row: UserRowWithScim): ScimUserRecord => ({
  user: toUser(row),
  externalId: row.scim_external_id,
  disabledByDirectory: row.disabled_at !== null && row.scim_disabled_at !== null,
});

export async function findScimUser(db: D1Database, id: string): Promise<ScimUserRecord | null> {
  const row = await guard(() => db.prepare('SELECT * FROM users WHERE id = ?').bind(id).first<UserRowWithScim>());
  return row ? toRecord(row) : null;
}

/**
 * Every account, oldest first (a list's filter and paging apply to this order); only the one with
 * `email` (compared without case), or those with `externalId` (exactly), when given.
 */
export async function listScimUsers(db: D1Database, only: { email?: string; externalId?: string } = {}): Promise<ScimUserRecord[]> {
  const statement =
    only.email !== undefined
      ? db.prepare('SELECT * FROM users WHERE email = ? ORDER BY created_at, rowid').bind(normaliseEmail(only.email))
      : only.externalId !== undefined
        ? db.prepare('SELECT * FROM users WHERE scim_external_id = ? ORDER BY created_at, rowid').bind(only.externalId)
        : db.prepare('SELECT * FROM users ORDER BY created_at, rowid');
  const { results } = await guard(() => statement.all<UserRowWithScim>());
  return results.map(toRecord);
}

export interface ScimUserFields {
  email: string;
  name: string | null;
  externalId: string | null;
  disabledAt: number | null;
}

/**
 * Creates an account the directory provisions: its address verified (the organisation vouches
 * for it), no password. Null when the address is taken.
 */
export async function insertScimUser(db: D1Database, fields: ScimUserFields, now: number): Promise<ScimUserRecord | null> {
  const row = await guard(() => db
    .prepare(
      `INSERT INTO users (id, email, email_verified, name, password_hash, roles, disabled_at, scim_disabled_at, scim_external_id, scim_managed_at, created_at, updated_at)
       VALUES (?, ?, 1, ?, NULL, '[]', ?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING
       RETURNING *`,
    )
    .bind(`usr_${randomId(12)}`, normaliseEmail(fields.email), fields.name, fields.disabledAt, fields.disabledAt, fields.externalId, now, now, now)
    .first<UserRowWithScim>());
  return row ? toRecord(row) : null;
}

/**
 * Writes the SCIM attributes of an account (never its address) in one statement, only while it
 * is as `read` (same `updated_at`, address and disabled state): a change computed from an older
 * read writes nothing (false). A disable it makes is the directory's (`scim_disabled_at`); one
 * already there keeps whose it was. With `keepingAdmin` (ADMIN_EMAILS), only while another
 * enabled administrator exists ({@link ANOTHER_ENABLED_ADMIN}), asked in the same statement.
 */
export async function updateScimUser(db: D1Database, read: User, fields: Omit<ScimUserFields, 'email'>, now: number, keepingAdmin?: readonly string[]): Promise<boolean> {
  const keep = keepingAdmin === undefined ? '' : ` AND ${ANOTHER_ENABLED_ADMIN}`;
  const keepArgs = keepingAdmin === undefined ? [] : anotherEnabledAdminArgs(read.id, keepingAdmin);
  const result = await guard(() => db
    .prepare(
      `UPDATE users SET name = ?, scim_external_id = ?, disabled_at = ?,
         scim_disabled_at = CASE WHEN ? IS NULL THEN NULL WHEN disabled_at IS NULL THEN ? ELSE scim_disabled_at END,
         scim_managed_at = COALESCE(scim_managed_at, ?), updated_at = ?
       WHERE id = ? AND updated_at = ? AND email = ? AND disabled_at IS ?${keep}`,
    )
    .bind(fields.name, fields.externalId, fields.disabledAt, fields.disabledAt, fields.disabledAt, now, Math.max(now, read.updatedAt + 1), read.id, read.updatedAt, read.email, read.disabledAt, ...keepArgs)
    .run());
  return result.meta.changes === 1;
}

export interface ScimGroup {
  id: string;
  displayName: string;
  externalId: string | null;
  /** Random, replaced by every change (see {@link replaceScimGroup}). */
  version: string;
  members: string[];
  createdAt: number;
  updatedAt: number;
}

interface GroupRow {
  id: string;
  display_name: string;
  external_id: string | null;
  version: string;
  created_at: number;
  updated_at: number;
}

const toGroup = (row: GroupRow, members: string[]): ScimGroup => ({
  id: row.id,
  displayName: row.display_name,
  externalId: row.external_id,
  version: row.version,
  members,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/**
 * The group and its members. Read one after the other: members read after a concurrent change
 * come with the older version, so a change computed from them is refused as stale, never lost.
 */
export async function findScimGroup(db: D1Database, id: string): Promise<ScimGroup | null> {
  const row = await guard(() => db.prepare('SELECT * FROM scim_groups WHERE id = ?').bind(id).first<GroupRow>());
  if (!row) return null;
  const { results } = await guard(() => db.prepare('SELECT user_id FROM scim_group_members WHERE group_id = ? ORDER BY user_id').bind(id).all<{ user_id: string }>());
  return toGroup(row, results.map((m) => m.user_id));
}

/** Every group with its members, oldest first; only the one named `displayName` (without case), when given. */
export async function listScimGroups(db: D1Database, only: { displayName?: string } = {}): Promise<ScimGroup[]> {
  const named = only.displayName;
  const groups = await guard(() =>
    (named !== undefined
      ? db.prepare('SELECT * FROM scim_groups WHERE display_name = ? COLLATE NOCASE').bind(named)
      : db.prepare('SELECT * FROM scim_groups ORDER BY created_at, rowid')
    ).all<GroupRow>(),
  );
  const members = await guard(() =>
    (named !== undefined
      ? db.prepare('SELECT m.group_id, m.user_id FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id WHERE g.display_name = ? COLLATE NOCASE ORDER BY m.user_id').bind(named)
      : db.prepare('SELECT group_id, user_id FROM scim_group_members ORDER BY user_id')
    ).all<{ group_id: string; user_id: string }>(),
  );
  const byGroup = new Map<string, string[]>();
  for (const m of members.results) {
    const list = byGroup.get(m.group_id) ?? [];
    list.push(m.user_id);
    byGroup.set(m.group_id, list);
  }
  return groups.results.map((row) => toGroup(row, byGroup.get(row.id) ?? []));
}

/** Member ids per statement: D1 binds at most 100 parameters, and a Worker's queries are counted. */
const MEMBERS_PER_STATEMENT = 90;

/** The ids among `ids` that name no account. */
export async function unknownUserIds(db: D1Database, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const known = new Set<string>();
  for (let i = 0; i < ids.length; i += MEMBERS_PER_STATEMENT) {
    const chunk = ids.slice(i, i + MEMBERS_PER_STATEMENT);
    const { results } = await guard(() => db.prepare(`SELECT id FROM users WHERE id IN (${chunk.map(() => '?').join(',')})`).bind(...chunk).all<{ id: string }>());
    for (const r of results) known.add(r.id);
  }
  return ids.filter((id) => !known.has(id));
}

export interface ScimGroupFields {
  displayName: string;
  externalId: string | null;
  members: string[];
}

/**
 * The statements that add `members` (existing accounts only), each under `guardClause`, and mark
 * them managed by the directory (it vouches for their groups from now on, even once none).
 */
function memberInserts(db: D1Database, groupId: string, members: string[], now: number, guardClause: string, guardArgs: unknown[]): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < members.length; i += MEMBERS_PER_STATEMENT) {
    const chunk = members.slice(i, i + MEMBERS_PER_STATEMENT);
    const ids = chunk.map(() => '?').join(',');
    statements.push(
      db
        .prepare(`INSERT OR IGNORE INTO scim_group_members (group_id, user_id) SELECT ?, id FROM users WHERE id IN (${ids}) AND ${guardClause}`)
        .bind(groupId, ...chunk, ...guardArgs),
      db.prepare(`UPDATE users SET scim_managed_at = ? WHERE id IN (${ids}) AND scim_managed_at IS NULL AND ${guardClause}`).bind(now, ...chunk, ...guardArgs),
    );
  }
  return statements;
}

/** Creates a group and its members in one batch; null when the display name is taken. */
export async function insertScimGroup(db: D1Database, fields: ScimGroupFields, now: number): Promise<ScimGroup | null> {
  const id = `grp_${randomId(12)}`;
  const taken = await guard(() => db.prepare('SELECT 1 AS x FROM scim_groups WHERE display_name = ? COLLATE NOCASE').bind(fields.displayName).first());
  if (taken) return null;
  try {
    await guard(() =>
      db.batch([
        db.prepare('INSERT INTO scim_groups (id, display_name, external_id, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').bind(id, fields.displayName, fields.externalId, randomId(12), now, now),
        ...memberInserts(db, id, fields.members, now, '1 = 1', []),
      ]),
    );
  } catch (e) {
    // Created concurrently under the same name: the unique index refused the whole batch.
    if (await guard(() => db.prepare('SELECT 1 AS x FROM scim_groups WHERE display_name = ? COLLATE NOCASE').bind(fields.displayName).first())) return null;
    throw e;
  }
  return findScimGroup(db, id);
}

/**
 * Replaces a group's name, external id and members in one batch, only if it is still at
 * `read.version`: the first statement writes a new random version, and every later one is
 * conditioned on that value, which no other change can have written; so a change computed from
 * an older read writes nothing. Returns 'written', 'taken' (another group has the name) or 'stale'.
 */
export async function replaceScimGroup(db: D1Database, read: ScimGroup, fields: ScimGroupFields, now: number): Promise<'written' | 'taken' | 'stale'> {
  const other = await guard(() => db.prepare('SELECT 1 AS x FROM scim_groups WHERE display_name = ? COLLATE NOCASE AND id != ?').bind(fields.displayName, read.id).first());
  if (other) return 'taken';
  const next = randomId(12);
  const mine = 'EXISTS (SELECT 1 FROM scim_groups WHERE id = ? AND version = ?)';
  try {
    const [updated] = await guard(() =>
      db.batch([
        db
          .prepare('UPDATE scim_groups SET display_name = ?, external_id = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?')
          .bind(fields.displayName, fields.externalId, next, now, read.id, read.version),
        db.prepare(`DELETE FROM scim_group_members WHERE group_id = ? AND ${mine}`).bind(read.id, read.id, next),
        ...memberInserts(db, read.id, fields.members, now, mine, [read.id, next]),
      ]),
    );
    return updated!.meta.changes === 1 ? 'written' : 'stale';
  } catch (e) {
    if (await guard(() => db.prepare('SELECT 1 AS x FROM scim_groups WHERE display_name = ? COLLATE NOCASE AND id != ?').bind(fields.displayName, read.id).first())) return 'taken';
    throw e;
  }
}

export async function deleteScimGroup(db: D1Database, id: string): Promise<boolean> {
  const r = await guard(() => db.prepare('DELETE FROM scim_groups WHERE id = ?').bind(id).run());
  // D1 counts the member rows the cascade removed with the group's own.
  return r.meta.changes > 0;
}
