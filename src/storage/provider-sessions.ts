/**
 * The `provider_sessions` table: which account each sign-in provider session (an ID token's
 * `sid`) signed into, and as which provider subject, so a logout token naming only that `sid`,
 * or a subject the account no longer has linked, finds the sessions to end.
 */
import { guard } from './errors';

/** Rows trimmed per sign-in: expired ones go a few at a time, never in one long delete. */
const TRIM_LIMIT = 50;

/**
 * Records that `provider`'s session `sid` of `subject` signed into `userId`, until `expiresAt`
 * (extended, never shortened, by a later sign-in from it). Some expired rows go in the same batch.
 */
export async function recordProviderSession(db: D1Database, provider: string, sid: string, subject: string, userId: string, expiresAt: number, now: number): Promise<void> {
  await guard(() =>
    db.batch([
      db.prepare('DELETE FROM provider_sessions WHERE rowid IN (SELECT rowid FROM provider_sessions WHERE expires_at < ? LIMIT ?)').bind(now, TRIM_LIMIT),
      db
        .prepare(
          `INSERT INTO provider_sessions (provider, sid, user_id, subject, expires_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (provider, sid, user_id) DO UPDATE SET subject = excluded.subject, expires_at = MAX(expires_at, excluded.expires_at)`,
        )
        .bind(provider, sid, userId, subject, expiresAt),
    ]),
  );
}

/**
 * The accounts `provider` signed into and that may still have sessions from it (at most 100
 * accounts, however many times each was signed into):
 * from its session `sid`, as its `subject`, or both (a session of that subject only: a provider
 * whose `sid` is shared by the subjects of one browser names another account's with another `sub`).
 */
export async function providerSessionUsers(db: D1Database, provider: string, named: { sid: string | null; subject: string | null }, now: number): Promise<string[]> {
  const { sid, subject } = named;
  if (sid === null && subject === null) return [];
  const query =
    sid === null
      ? db.prepare('SELECT DISTINCT user_id FROM provider_sessions WHERE provider = ? AND subject = ? AND expires_at >= ? LIMIT 100').bind(provider, subject, now)
      : subject === null
        ? db.prepare('SELECT user_id FROM provider_sessions WHERE provider = ? AND sid = ? AND expires_at >= ? LIMIT 100').bind(provider, sid, now)
        : db.prepare('SELECT user_id FROM provider_sessions WHERE provider = ? AND sid = ? AND subject = ? AND expires_at >= ? LIMIT 100').bind(provider, sid, subject, now);
  const { results } = await guard(() => query.all<{ user_id: string }>());
  return [...new Set(results.map((r) => r.user_id))];
}

/**
 * Records that a logout token ended `provider`'s session `sid` (for `subject` only, when the
 * token named one), until `expiresAt`: a sign-in from it arriving later is refused
 * ({@link isProviderSessionEnded}). Expired rows of that provider go in the same batch.
 */
export async function recordEndedProviderSession(db: D1Database, provider: string, sid: string, subject: string | null, expiresAt: number, now: number): Promise<void> {
  await guard(() =>
    db.batch([
      db.prepare('DELETE FROM provider_ended_sessions WHERE provider = ? AND expires_at < ?').bind(provider, now),
      db
        .prepare(
          `INSERT INTO provider_ended_sessions (provider, sid, subject, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (provider, sid, subject) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
        )
        .bind(provider, sid, subject ?? '', expiresAt),
    ]),
  );
}

/** True if a logout token has ended `provider`'s session `sid` for `subject` (recently enough to be remembered). */
export async function isProviderSessionEnded(db: D1Database, provider: string, sid: string, subject: string, now: number): Promise<boolean> {
  const row = await guard(() =>
    db.prepare("SELECT 1 AS ended FROM provider_ended_sessions WHERE provider = ? AND sid = ? AND subject IN ('', ?) AND expires_at >= ? LIMIT 1").bind(provider, sid, subject, now).first<number>('ended'),
  );
  return row !== null;
}
