/**
 * The `provider_sessions` table: which account each sign-in provider session (an ID token's
 * `sid`) signed into, so a logout token naming only that `sid` finds the sessions to end.
 */
import { guard } from './errors';

/** Rows trimmed per sign-in: expired ones go a few at a time, never in one long delete. */
const TRIM_LIMIT = 50;

/**
 * Records that `provider`'s session `sid` signed into `userId`, until `expiresAt` (extended,
 * never shortened, by a later sign-in from it). Some expired rows go in the same batch.
 */
export async function recordProviderSession(db: D1Database, provider: string, sid: string, userId: string, expiresAt: number, now: number): Promise<void> {
  await guard(() =>
    db.batch([
      db.prepare('DELETE FROM provider_sessions WHERE rowid IN (SELECT rowid FROM provider_sessions WHERE expires_at < ? LIMIT ?)').bind(now, TRIM_LIMIT),
      db
        .prepare(
          `INSERT INTO provider_sessions (provider, sid, user_id, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (provider, sid, user_id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
        )
        .bind(provider, sid, userId, expiresAt),
    ]),
  );
}

/** The accounts `provider`'s session `sid` signed into and may still have sessions in (at most 100). */
export async function providerSessionUsers(db: D1Database, provider: string, sid: string, now: number): Promise<string[]> {
  const { results } = await guard(() =>
    db.prepare('SELECT user_id FROM provider_sessions WHERE provider = ? AND sid = ? AND expires_at >= ? LIMIT 100').bind(provider, sid, now).all<{ user_id: string }>(),
  );
  return results.map((r) => r.user_id);
}
