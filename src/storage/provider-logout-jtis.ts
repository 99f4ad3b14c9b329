/**
 * The `provider_logout_jtis` table: the `jti` of every logout token a sign-in provider sent
 * that was accepted (OpenID Connect Back-Channel Logout 1.0 §2.6), and of every Security Event
 * Token a Shared Signals transmitter pushed that was accepted (RFC 8417 §2.2), so one token is
 * acted on once. `provider` is the sender: a sign-in provider's id, or {@link sharedSignalsSender}
 * of a transmitter (the two never meet: a provider id has no colon).
 */
import { guard } from './errors';

/** The sender under which a Shared Signals transmitter's `jti`s are kept. */
export const sharedSignalsSender = (transmitterId: string) => `ssf:${transmitterId}`;

/**
 * Records a logout token's `jti` for `provider` until `expiresAt`; false if that provider's
 * token with this `jti` was accepted before (a replay). The provider's expired `jti`s are
 * deleted in the same batch.
 */
export async function useProviderLogoutJti(db: D1Database, provider: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
  const [, inserted] = await guard(() =>
    db.batch([
      db.prepare('DELETE FROM provider_logout_jtis WHERE provider = ? AND expires_at < ?').bind(provider, now),
      db.prepare('INSERT OR IGNORE INTO provider_logout_jtis (provider, jti, expires_at) VALUES (?, ?, ?)').bind(provider, jti, expiresAt),
    ]),
  );
  return (inserted?.meta.changes ?? 0) > 0;
}

/**
 * Forgets an accepted `jti` again: the sessions it names could not be ended (storage down), so
 * the provider's retry of the same token must be acted on, not refused as a replay.
 */
export async function releaseProviderLogoutJti(db: D1Database, provider: string, jti: string): Promise<void> {
  await guard(() => db.prepare('DELETE FROM provider_logout_jtis WHERE provider = ? AND jti = ?').bind(provider, jti).run());
}

/**
 * Counts one more replay of an accepted `jti`; returns how many there have been (1: the first),
 * or 0 when the row has just gone (its window passed meanwhile).
 */
export async function countProviderLogoutReplay(db: D1Database, provider: string, jti: string): Promise<number> {
  const row = await guard(() =>
    db.prepare('UPDATE provider_logout_jtis SET replays = replays + 1 WHERE provider = ? AND jti = ? RETURNING replays').bind(provider, jti).first<number>('replays'),
  );
  return row ?? 0;
}
