/** The `identities` table: one row per (provider, provider subject), pointing at a user. */
import { guard } from './errors';
import { ACCOUNT_AS_READ, accountAsReadArgs, type AccountAsRead } from './users';
import type { Directory } from './directory';

export interface Identity {
  provider: string;
  subject: string;
  userId: string;
  email: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  /** AES-GCM ciphertext (see tokens/provider-token-crypto.ts), or null. */
  tokensEncrypted: string | null;
}

interface IdentityRow {
  provider: string;
  subject: string;
  user_id: string;
  email: string | null;
  created_at: number;
  last_used_at: number | null;
  tokens_encrypted: string | null;
}

const toIdentity = (r: IdentityRow): Identity => ({
  provider: r.provider,
  subject: r.subject,
  userId: r.user_id,
  email: r.email,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  tokensEncrypted: r.tokens_encrypted,
});

export async function findIdentity(db: D1Database, provider: string, subject: string): Promise<Identity | null> {
  const row = await guard(() => db.prepare('SELECT * FROM identities WHERE provider = ? AND subject = ?').bind(provider, subject).first<IdentityRow>());
  return row ? toIdentity(row) : null;
}

/** The user's identity with a provider (the most recently used one if several). */
export async function findUserIdentity(db: D1Database, userId: string, provider: string): Promise<Identity | null> {
  const row = await guard(() => db
    .prepare('SELECT * FROM identities WHERE user_id = ? AND provider = ? ORDER BY last_used_at DESC LIMIT 1')
    .bind(userId, provider)
    .first<IdentityRow>());
  return row ? toIdentity(row) : null;
}

export async function listUserIdentities(db: Directory, userId: string): Promise<Identity[]> {
  const { results } = await guard(() => db.prepare('SELECT * FROM identities WHERE user_id = ? ORDER BY created_at').bind(userId).all<IdentityRow>());
  return results.map(toIdentity);
}

/**
 * Inserts the identity; returns false when (provider, subject) already exists. With `asRead` (a
 * link from the account page), only while the account is as the request read it
 * (storage/users.ts `AccountAsRead`: a claim in between removed the holder's ways in).
 */
export async function insertIdentity(
  db: D1Database,
  input: { provider: string; subject: string; userId: string; email: string | null; tokensEncrypted: string | null },
  now: number,
  asRead?: AccountAsRead,
): Promise<boolean> {
  const values = [input.provider, input.subject, input.userId, input.email, now, now, input.tokensEncrypted];
  const r = await guard(() => db
    .prepare(
      `INSERT INTO identities (provider, subject, user_id, email, created_at, last_used_at, tokens_encrypted)
       SELECT ?, ?, ?, ?, ?, ?, ? WHERE ${asRead === undefined ? '1' : ACCOUNT_AS_READ} ON CONFLICT DO NOTHING`,
    )
    .bind(...values, ...(asRead === undefined ? [] : accountAsReadArgs(asRead)))
    .run());
  return r.meta.changes === 1;
}

/** Records a sign-in: last use, the email the provider reports now, and (when kept) new tokens. */
export async function touchIdentity(
  db: D1Database,
  key: { provider: string; subject: string },
  update: { email: string | null; tokensEncrypted?: string | null },
  now: number,
): Promise<void> {
  if (update.tokensEncrypted === undefined) {
    await guard(() => db.prepare('UPDATE identities SET last_used_at = ?, email = ? WHERE provider = ? AND subject = ?').bind(now, update.email, key.provider, key.subject).run());
    return;
  }
  await guard(() => db
    .prepare('UPDATE identities SET last_used_at = ?, email = ?, tokens_encrypted = ? WHERE provider = ? AND subject = ?')
    .bind(now, update.email, update.tokensEncrypted, key.provider, key.subject)
    .run());
}

/**
 * Compare-and-set of the stored tokens: writes `next` only if the row still holds `expected`
 * (the ciphertext read before a renewal). False when another request changed it meanwhile, so
 * a renewal that lost a race never overwrites (or clears) the winner's rotated grant.
 */
export async function replaceIdentityTokens(
  db: D1Database,
  key: { provider: string; subject: string },
  expected: string,
  next: string | null,
): Promise<boolean> {
  const r = await guard(() => db
    .prepare('UPDATE identities SET tokens_encrypted = ? WHERE provider = ? AND subject = ? AND tokens_encrypted = ?')
    .bind(next, key.provider, key.subject, expected)
    .run());
  return r.meta.changes === 1;
}
