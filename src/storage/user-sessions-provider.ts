/**
 * A sign-in provider's back-channel logout, inside the user's sessions object
 * (storage/user-sessions.ts, which imports this on the first call: no start-up cost).
 */

/**
 * The live sessions started from `provider`: with `providerSid`, those started from that
 * provider session, and those that recorded none (sessions of earlier versions, which cannot be
 * told apart: ended rather than kept); without, all of them.
 */
export function providerSessions(sql: SqlStorage, provider: string, providerSid: string | null, now: number): string[] {
  return sql
    .exec<{ id: string }>(
      'SELECT id FROM sessions WHERE provider = ? AND revoked_at IS NULL AND expires_at > ? AND (?3 IS NULL OR provider_sid IS NULL OR provider_sid = ?3)',
      provider, now, providerSid,
    )
    .toArray()
    .map((r) => r.id);
}
