/**
 * Single-use tokens for mailed links (D1 table `account_tokens`, migration 0003).
 *
 * A token is 256 random bits, handed out once as base64url text; only its SHA-256 is stored.
 * Redeeming deletes the row in the same statement that reads it (`DELETE … RETURNING`), so of
 * two simultaneous redemptions exactly one gets the row: a link works once, atomically.
 */
import { randomId, sha256 } from '../util/random';
import { guard } from './errors';

/** What a token lets its holder do. */
export type TokenPurpose = 'verify_email' | 'password_reset' | 'add_password' | 'change_email';

export interface AccountToken {
  userId: string;
  purpose: TokenPurpose;
  /** The address the token was issued for (the new address, for `change_email`). */
  email: string;
  createdAt: number;
  expiresAt: number;
}

interface Row {
  user_id: string;
  purpose: TokenPurpose;
  email: string;
  created_at: number;
  expires_at: number;
}

const fromRow = (r: Row): AccountToken => ({ userId: r.user_id, purpose: r.purpose, email: r.email, createdAt: r.created_at, expiresAt: r.expires_at });

/**
 * Issues a token for `userId` and `purpose`, replacing any the user already had for that
 * purpose (a newer request invalidates the older link). Returns the raw token for the link.
 *
 * @example
 * const token = await issueAccountToken(db, { userId, purpose: 'password_reset', email, ttlSeconds: 1800, now });
 */
export async function issueAccountToken(
  db: D1Database,
  input: { userId: string; purpose: TokenPurpose; email: string; ttlSeconds: number; now: number },
): Promise<string> {
  const token = randomId(32);
  const hash = await sha256(token);
  await guard(() =>
    db.batch([
      db.prepare('DELETE FROM account_tokens WHERE (user_id = ? AND purpose = ?) OR expires_at < ?').bind(input.userId, input.purpose, input.now),
      db
        .prepare('INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .bind(hash, input.userId, input.purpose, input.email, input.now, input.now + input.ttlSeconds),
    ]),
  );
  return token;
}

/**
 * Redeems a token: returns what it was issued for and deletes it, or null when it is unknown,
 * already used, replaced, of another purpose or expired. An expired token is deleted too.
 */
export async function redeemAccountToken(db: D1Database, token: string, purpose: TokenPurpose, now: number): Promise<AccountToken | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const hash = await sha256(token);
  const row = await guard(() =>
    db
      .prepare('DELETE FROM account_tokens WHERE token_hash = ? AND purpose = ? RETURNING user_id, purpose, email, created_at, expires_at')
      .bind(hash, purpose)
      .first<Row>(),
  );
  if (!row || row.expires_at <= now) return null;
  return fromRow(row);
}

/**
 * Looks a token up without using it: for the page a link opens (mail scanners fetch links, so
 * a GET must never consume). Null when it would not redeem.
 */
export async function peekAccountToken(db: D1Database, token: string, purpose: TokenPurpose, now: number): Promise<AccountToken | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const hash = await sha256(token);
  const row = await guard(() =>
    db
      .prepare('SELECT user_id, purpose, email, created_at, expires_at FROM account_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ?')
      .bind(hash, purpose, now)
      .first<Row>(),
  );
  return row ? fromRow(row) : null;
}

/** Deletes a user's tokens of the given purposes (all purposes when none are named). */
export async function revokeAccountTokens(db: D1Database, userId: string, purposes: TokenPurpose[] = []): Promise<void> {
  if (purposes.length === 0) {
    await guard(() => db.prepare('DELETE FROM account_tokens WHERE user_id = ?').bind(userId).run());
    return;
  }
  await guard(() =>
    db
      .prepare(`DELETE FROM account_tokens WHERE user_id = ? AND purpose IN (${purposes.map(() => '?').join(', ')})`)
      .bind(userId, ...purposes)
      .run(),
  );
}

/** Housekeeping: drops expired tokens (scheduled/housekeeping.ts). Returns how many. */
export async function deleteExpiredAccountTokens(db: D1Database, now: number): Promise<number> {
  const r = await guard(() => db.prepare('DELETE FROM account_tokens WHERE expires_at <= ?').bind(now).run());
  return r.meta.changes;
}

/**
 * When the user's live token for `purpose` was issued, or null: lets a flow mail at most one
 * link per account and cool-down without keeping another counter.
 */
export async function accountTokenIssuedAt(db: D1Database, userId: string, purpose: TokenPurpose, now: number): Promise<number | null> {
  const row = await guard(() =>
    db
      .prepare('SELECT MAX(created_at) AS at FROM account_tokens WHERE user_id = ? AND purpose = ? AND expires_at > ?')
      .bind(userId, purpose, now)
      .first<{ at: number | null }>(),
  );
  return row?.at ?? null;
}
