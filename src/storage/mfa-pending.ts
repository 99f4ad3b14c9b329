/**
 * `mfa_pending`: sign-ins whose first factor passed and whose second is still owed. The client
 * holds a 256-bit handle; only its SHA-256 is stored. Completing one spends it first, by a conditional
 * update ({@link spendPending}), and only then stores the session (in the user's object,
 * auth/sign-in.ts): a handle completes at most one sign-in, however often it is replayed; a
 * failure in between leaves it spent without a session, and the user signs in again.
 */
import { guard } from './errors';
import { ACCOUNT_AS_READ, accountAsReadArgs, type AccountAsRead } from './users';
import type { ProviderGroups } from './user-sessions';

export type PendingPurpose = 'verify' | 'enrol';
export type PendingMode = 'form' | 'cookie' | 'token';

export interface PendingSignIn {
  idHash: string;
  userId: string;
  purpose: PendingPurpose;
  /** The first factor's `amr`. */
  amr: string[];
  provider: string | null;
  mode: PendingMode;
  returnTo: string;
  /** The provider's groups for the session it will start (null: none). */
  groups: ProviderGroups | null;
  /** The provider's session id (its ID token's `sid`) for the session it will start (null: none). */
  providerSid: string | null;
  /** The provider's subject who signed in (null: not a provider sign-in, or one of an earlier version). */
  providerSubject: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

type Row = {
  id_hash: string;
  user_id: string;
  purpose: string;
  amr: string;
  provider: string | null;
  mode: string;
  return_to: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  provider_groups: string | null;
  provider_sid: string | null;
  provider_subject: string | null;
};

/** The stored groups, as this module wrote them; anything else is none. */
function parseGroups(text: string | null): ProviderGroups | null {
  if (text === null) return null;
  try {
    const x: unknown = JSON.parse(text);
    if (typeof x !== 'object' || x === null || !('groups' in x) || !('readAt' in x) || !('source' in x)) return null;
    const { groups, readAt, source } = x;
    if (!Array.isArray(groups) || typeof readAt !== 'number' || typeof source !== 'object' || source === null) return null;
    const subject = 'subject' in source ? source.subject : null;
    const grant = 'grant' in source ? source.grant : null;
    if (typeof subject !== 'string' || (grant !== null && typeof grant !== 'string')) return null;
    return { groups: groups.filter((g): g is string => typeof g === 'string'), readAt, source: { subject, grant } };
  } catch {
    return null;
  }
}

function toPending(r: Row): PendingSignIn {
  let amr: unknown;
  try {
    amr = JSON.parse(r.amr);
  } catch {
    amr = [];
  }
  return {
    idHash: r.id_hash,
    userId: r.user_id,
    purpose: r.purpose === 'enrol' ? 'enrol' : 'verify',
    amr: Array.isArray(amr) ? amr.filter((m): m is string => typeof m === 'string') : [],
    provider: r.provider,
    mode: r.mode === 'token' ? 'token' : r.mode === 'cookie' ? 'cookie' : 'form',
    returnTo: r.return_to,
    groups: parseGroups(r.provider_groups),
    providerSid: r.provider_sid,
    providerSubject: r.provider_subject,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usedAt: r.used_at,
  };
}

/**
 * Stores a pending sign-in, only while the account is as the sign-in read it ({@link AccountAsRead});
 * false if not. Rows that ended a day ago go in the same round trip.
 */
export async function insertPending(db: D1Database, p: Omit<PendingSignIn, 'usedAt'>, asRead: AccountAsRead): Promise<boolean> {
  const [, inserted] = await guard(() => db.batch([
    db.prepare('DELETE FROM mfa_pending WHERE expires_at < ?').bind(p.createdAt - 86_400),
    db
      .prepare(`INSERT INTO mfa_pending (id_hash, user_id, purpose, amr, provider, mode, return_to, provider_groups, provider_sid, provider_subject, created_at, expires_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ${ACCOUNT_AS_READ}`)
      .bind(p.idHash, p.userId, p.purpose, JSON.stringify(p.amr), p.provider, p.mode, p.returnTo, p.groups === null ? null : JSON.stringify(p.groups), p.providerSid, p.providerSubject, p.createdAt, p.expiresAt, ...accountAsReadArgs(asRead)),
  ]));
  return inserted?.meta.changes === 1;
}

export async function findPending(db: D1Database, idHash: string): Promise<PendingSignIn | null> {
  const row = await guard(() => db.prepare('SELECT * FROM mfa_pending WHERE id_hash = ?').bind(idHash).first<Row>());
  return row ? toPending(row) : null;
}

/** Housekeeping: pending sign-ins that expired before `before` (used or not); returns how many. */
export async function deleteExpiredPending(db: D1Database, before: number): Promise<number> {
  const r = await guard(() => db.prepare('DELETE FROM mfa_pending WHERE expires_at < ?').bind(before).run());
  return r.meta.changes;
}

/**
 * Spends the pending sign-in: true if this call did (unused and unexpired, now used), false
 * otherwise. Its provider groups and sealed grant go with it (the caller holds them, for the
 * session): the row stays a day for housekeeping, a live provider grant need not.
 */
export async function spendPending(db: D1Database, idHash: string, now: number): Promise<boolean> {
  const r = await guard(() => db.prepare('UPDATE mfa_pending SET used_at = ?, provider_groups = NULL WHERE id_hash = ? AND used_at IS NULL AND expires_at > ?').bind(now, idHash, now).run());
  return r.meta.changes === 1;
}

/**
 * A sign-in provider's back-channel logout (auth/provider-logout.ts): spends the unused pending
 * sign-ins that provider started which the logout names, so none of them becomes a session
 * after its provider session ended. Those of the accounts named (`userIds`) or of the subject
 * named (`subject`: also when its identity is no longer linked), from the provider session
 * named (`sid`) or one unknown; with only a `sid`, also those from that provider session
 * whatever the account. Returns how many this call spent.
 */
export async function spendProviderPending(db: D1Database, provider: string, named: { sid: string | null; subject: string | null }, userIds: readonly string[], now: number): Promise<number> {
  const r = await guard(() =>
    db
      .prepare(
        `UPDATE mfa_pending SET used_at = ?1, provider_groups = NULL
         WHERE used_at IS NULL AND expires_at > ?1 AND provider = ?2
           AND (?3 IS NULL OR provider_sid IS NULL OR provider_sid = ?3)
           AND ((?4 IS NULL AND provider_sid = ?3)
             OR (?4 IS NOT NULL AND provider_subject = ?4)
             OR user_id IN (SELECT value FROM json_each(?5)))`,
      )
      .bind(now, provider, named.sid, named.subject, JSON.stringify(userIds))
      .run(),
  );
  return r.meta.changes;
}
