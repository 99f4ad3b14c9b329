/**
 * The `passkeys` table (migrations/0006_passkeys.sql): a user's WebAuthn credentials. Plain
 * values in and out; the WebAuthn checks themselves live in auth/passkeys.ts.
 */
import { guard } from './errors';
import { deleteOrphanRecoveryCodes } from './second-factors';
import { ACCOUNT_AS_READ, accountAsReadArgs, type AccountAsRead } from './users';
import type { Directory } from './directory';

export type PasskeyDeviceType = 'singleDevice' | 'multiDevice';

export interface Passkey {
  /** The credential id, base64url. */
  id: string;
  userId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: PasskeyDeviceType;
  backedUp: boolean;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

interface PasskeyRow {
  id: string;
  user_id: string;
  public_key: string;
  counter: number;
  transports: string;
  device_type: string;
  backed_up: number;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

function parseTransports(text: string): string[] {
  try {
    const list: unknown = JSON.parse(text);
    return Array.isArray(list) ? list.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

const toPasskey = (r: PasskeyRow): Passkey => ({
  id: r.id,
  userId: r.user_id,
  publicKey: r.public_key,
  counter: r.counter,
  transports: parseTransports(r.transports),
  deviceType: r.device_type === 'multiDevice' ? 'multiDevice' : 'singleDevice',
  backedUp: r.backed_up === 1,
  name: r.name,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});

export type NewPasskey = Omit<Passkey, 'createdAt' | 'lastUsedAt'>;

/**
 * Stores a new credential, only while the account is as the request read it (storage/users.ts
 * `AccountAsRead`: a claim in between removed the holder's ways in); false when its id is
 * already registered (to anyone) or the account changed.
 */
export async function insertPasskey(db: D1Database, p: NewPasskey, now: number, asRead: AccountAsRead): Promise<boolean> {
  const r = await guard(() => db
    .prepare(
      `INSERT INTO passkeys (id, user_id, public_key, counter, transports, device_type, backed_up, name, created_at)
       SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ${ACCOUNT_AS_READ} ON CONFLICT DO NOTHING`,
    )
    .bind(p.id, p.userId, p.publicKey, p.counter, JSON.stringify(p.transports), p.deviceType, p.backedUp ? 1 : 0, p.name, now, ...accountAsReadArgs(asRead))
    .run());
  return r.meta.changes === 1;
}

export async function findPasskey(db: D1Database, id: string): Promise<Passkey | null> {
  const row = await guard(() => db.prepare('SELECT * FROM passkeys WHERE id = ?').bind(id).first<PasskeyRow>());
  return row ? toPasskey(row) : null;
}

/** The user's passkeys, oldest first (rowid: in the order they were added, within a second too). */
export async function listPasskeys(db: Directory, userId: string): Promise<Passkey[]> {
  const { results } = await guard(() => db.prepare('SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at, rowid').bind(userId).all<PasskeyRow>());
  return results.map(toPasskey);
}

/** How many passkeys the user has (a passkey is a second factor too: auth/second-factor-status.ts). */
export async function countPasskeys(db: D1Database, userId: string): Promise<number> {
  const row = await guard(() => db.prepare('SELECT COUNT(*) AS n FROM passkeys WHERE user_id = ?').bind(userId).first<{ n: number }>());
  return row?.n ?? 0;
}

export async function renamePasskey(db: D1Database, userId: string, id: string, name: string): Promise<boolean> {
  const r = await guard(() => db.prepare('UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?').bind(name, id, userId).run());
  return r.meta.changes === 1;
}

/**
 * Removes one passkey and, in the same transaction, the recovery codes if it was the user's last
 * second factor (storage/second-factors.ts). Null if there was no such passkey.
 */
export async function deletePasskey(db: D1Database, userId: string, id: string): Promise<{ recoveryCodes: number } | null> {
  const [r, codes] = await guard(() => db.batch([db.prepare('DELETE FROM passkeys WHERE id = ? AND user_id = ?').bind(id, userId), deleteOrphanRecoveryCodes(db, userId)]));
  return r?.meta.changes === 1 ? { recoveryCodes: codes?.meta.changes ?? 0 } : null;
}

/**
 * Records a verified use: the new counter, the backup flag, the time. Conditional on the counter
 * still being what the verification compared against, so two assertions racing with the same
 * counter cannot both pass. False when the row changed (or vanished) meanwhile.
 */
export async function recordPasskeyUse(
  db: D1Database,
  use: { id: string; previousCounter: number; counter: number; backedUp: boolean },
  now: number,
): Promise<boolean> {
  const r = await guard(() => db
    .prepare('UPDATE passkeys SET counter = ?, backed_up = ?, last_used_at = ? WHERE id = ? AND counter = ?')
    .bind(use.counter, use.backedUp ? 1 : 0, now, use.id, use.previousCounter)
    .run());
  return r.meta.changes === 1;
}
