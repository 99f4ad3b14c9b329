/**
 * Single-use, short-lived WebAuthn challenges in D1 (`webauthn_challenges`), stored as SHA-256
 * hashes. Like OAuth states (oauth-states.ts), and for the same reasons: KV's get-then-delete is
 * not atomic and other locations see writes late; one `DELETE ... RETURNING` on D1 is, so
 * exactly one response per challenge can ever be accepted.
 */
import { sha256 } from '../util/random';
import { guard } from './errors';

export type ChallengePurpose = 'register' | 'authenticate';

/** Stores a new challenge (and drops expired ones in the same round trip). */
export async function saveChallenge(
  db: D1Database,
  challenge: string,
  purpose: ChallengePurpose,
  userId: string | null,
  expiresAt: number,
  now: number,
): Promise<void> {
  const hash = await sha256(challenge);
  await guard(() => db.batch([
    db.prepare('DELETE FROM webauthn_challenges WHERE expires_at < ?').bind(now),
    db.prepare('INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, expires_at) VALUES (?, ?, ?, ?)').bind(hash, purpose, userId, expiresAt),
  ]));
}

/**
 * Uses a challenge up: deletes it and says whom it was issued to. Null when it is unknown,
 * already used, issued for the other purpose, or expired (an expired one is deleted too).
 */
export async function consumeChallenge(db: D1Database, challenge: string, purpose: ChallengePurpose, now: number): Promise<{ userId: string | null } | null> {
  const hash = await sha256(challenge);
  const row = await guard(() => db
    .prepare('DELETE FROM webauthn_challenges WHERE challenge_hash = ? AND purpose = ? RETURNING user_id, expires_at')
    .bind(hash, purpose)
    .first<{ user_id: string | null; expires_at: number }>());
  if (!row || row.expires_at < now) return null;
  return { userId: row.user_id };
}

/** Housekeeping: challenges that expired before `now` (unanswered); returns how many. */
export async function deleteExpiredChallenges(db: D1Database, now: number): Promise<number> {
  const r = await guard(() => db.prepare('DELETE FROM webauthn_challenges WHERE expires_at < ?').bind(now).run());
  return r.meta.changes;
}
