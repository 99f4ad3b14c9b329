/**
 * The `users` table. All SQL is prepared statements; emails are stored normalised
 * (trimmed, lower-case) and unique regardless of case.
 */
import { randomId } from '../util/random';
import { guard } from './errors';
import type { Directory } from './directory';

export interface User {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  avatarUrl: string | null;
  passwordHash: string | null;
  roles: string[];
  disabledAt: number | null;
  /** Since when the directory (SCIM) manages the account (created, wrote or grouped it); null: never. */
  scimManagedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

interface UserRow {
  id: string;
  email: string;
  email_verified: number;
  name: string | null;
  avatar_url: string | null;
  password_hash: string | null;
  roles: string;
  disabled_at: number | null;
  scim_managed_at: number | null;
  created_at: number;
  updated_at: number;
}

function parseRoles(text: string): string[] {
  try {
    const roles: unknown = JSON.parse(text);
    return Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    emailVerified: row.email_verified === 1,
    name: row.name,
    avatarUrl: row.avatar_url,
    passwordHash: row.password_hash,
    roles: parseRoles(row.roles),
    disabledAt: row.disabled_at,
    scimManagedAt: row.scim_managed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The account as a sign-in read it when it checked the first factor. The session or pending
 * second-factor state that sign-in stores must be stored only while the account is still so
 * (same address, same verified flag, enabled): a proof of the mailbox in between (a claim) has
 * verified the address and removed what the reader proved, and would otherwise be outrun.
 */
export type AccountAsRead = Pick<User, 'id' | 'email' | 'emailVerified'>;

/** SQL condition for {@link AccountAsRead}; bind {@link accountAsReadArgs} after the statement's own values. */
export const ACCOUNT_AS_READ = 'EXISTS (SELECT 1 FROM users WHERE id = ? AND email = ? AND email_verified = ? AND disabled_at IS NULL)';

export const accountAsReadArgs = (account: AccountAsRead) => [account.id, account.email, account.emailVerified ? 1 : 0] as const;

/** True while the account is as read ({@link AccountAsRead}): same address, same verified flag, enabled. */
export async function isAccountAsRead(db: D1Database, account: AccountAsRead): Promise<boolean> {
  const row = await guard(() => db.prepare(`SELECT ${ACCOUNT_AS_READ} AS still`).bind(...accountAsReadArgs(account)).first<{ still: number }>());
  return row?.still === 1;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function findUserByEmail(db: D1Database, email: string): Promise<User | null> {
  const row = await guard(() => db.prepare('SELECT * FROM users WHERE email = ?').bind(normaliseEmail(email)).first<UserRow>());
  return row ? toUser(row) : null;
}

export async function findUserById(db: Directory, id: string): Promise<User | null> {
  const row = await guard(() => db.prepare('SELECT * FROM users WHERE id = ?').bind(id).first<UserRow>());
  return row ? toUser(row) : null;
}

export interface NewUser {
  email: string;
  emailVerified: boolean;
  name?: string | null;
  avatarUrl?: string | null;
  passwordHash?: string | null;
  roles?: string[];
}

/** Inserts a user; returns null when the email is taken (unique index), never throws for that. */
export async function createUser(db: D1Database, input: NewUser, now: number): Promise<User | null> {
  const id = `usr_${randomId(12)}`;
  const row = await guard(() => db
    .prepare(
      `INSERT INTO users (id, email, email_verified, name, avatar_url, password_hash, roles, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING
       RETURNING *`,
    )
    .bind(
      id,
      normaliseEmail(input.email),
      input.emailVerified ? 1 : 0,
      input.name ?? null,
      input.avatarUrl ?? null,
      input.passwordHash ?? null,
      JSON.stringify(input.roles ?? []),
      now,
      now,
    )
    .first<UserRow>());
  return row ? toUser(row) : null;
}

export async function updatePasswordHash(db: D1Database, userId: string, hash: string, now: number): Promise<void> {
  await guard(() => db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').bind(hash, now, userId).run());
}

/**
 * Fills in the name and avatar (null keeps the stored value). Never the address's verification:
 * that takes a proof of the mailbox (storage/mailbox-proof.ts).
 */
export async function updateProfile(db: D1Database, userId: string, profile: { name?: string | null; avatarUrl?: string | null }, now: number): Promise<void> {
  await guard(() => db
    .prepare('UPDATE users SET name = COALESCE(?, name), avatar_url = COALESCE(?, avatar_url), updated_at = ? WHERE id = ?')
    .bind(profile.name ?? null, profile.avatarUrl ?? null, now, userId)
    .run());
}

export async function setRoles(db: D1Database, userId: string, roles: string[], now: number): Promise<boolean> {
  const r = await guard(() => db.prepare('UPDATE users SET roles = ?, updated_at = ? WHERE id = ?').bind(JSON.stringify(roles), now, userId).run());
  return r.meta.changes === 1;
}

/** The administrator's enable or disable: the directory (SCIM) may not undo a disable made here. */
export async function setDisabled(db: D1Database, userId: string, disabledAt: number | null, now: number): Promise<boolean> {
  const r = await guard(() => db.prepare('UPDATE users SET disabled_at = ?, scim_disabled_at = NULL, updated_at = ? WHERE id = ?').bind(disabledAt, now, userId).run());
  return r.meta.changes === 1;
}

/** The users among `ids` (at most 100, the caller's bound), in no order; ids of no user are left out. */
export async function findUsersByIds(db: Directory, ids: readonly string[]): Promise<User[]> {
  if (ids.length === 0) return [];
  const { results } = await guard(() => db.prepare('SELECT * FROM users WHERE id IN (SELECT value FROM json_each(?))').bind(JSON.stringify(ids)).all<UserRow>());
  return results.map(toUser);
}

export async function listUsers(db: Directory, opts: { search?: string; limit: number; offset: number }): Promise<User[]> {
  const pattern = opts.search ? `%${opts.search.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : '%';
  const { results } = await guard(() => db
    .prepare(
      `SELECT * FROM users WHERE email LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\'
       ORDER BY created_at DESC, id LIMIT ? OFFSET ?`,
    )
    .bind(pattern, pattern, opts.limit, opts.offset)
    .all<UserRow>());
  return results.map(toUser);
}
