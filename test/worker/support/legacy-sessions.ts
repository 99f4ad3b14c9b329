/**
 * Sessions as an earlier version kept them: rows in D1's `sessions` table with a 43-character
 * refresh token (no user-id routing part). The upgrade tests start from these, as a deployed
 * gateway with live sessions would.
 */
import { randomId, sha256 } from '../../../src/util/random';
import { baseEnv, uniqueEmail } from './helpers';

const now = () => Math.floor(Date.now() / 1000);

/** A verified user made an hour ago, whose sessions object has never been used. */
export async function insertLegacyUser(emailPrefix: string): Promise<{ userId: string; email: string }> {
  const userId = `usr_${randomId(12)}`;
  const email = uniqueEmail(emailPrefix);
  const t = now();
  await baseEnv.DB.prepare('INSERT INTO users (id, email, email_verified, created_at, updated_at) VALUES (?, ?, 1, ?, ?)').bind(userId, email, t - 3600, t - 3600).run();
  return { userId, email };
}

/** A live D1 session of `userId`, signed in an hour ago with a password; returns its id and refresh token. */
export async function insertLegacySession(userId: string, client: { userAgent?: string; ip?: string } = {}): Promise<{ id: string; token: string }> {
  const id = `ses_${randomId(12)}`;
  const token = randomId(32);
  const t = now();
  await baseEnv.DB.prepare(
    `INSERT INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, user_agent, ip, provider, amr, auth_time)
     VALUES (?, ?, ?, 'fam', ?, ?, ?, ?, ?, 'password', '["pwd"]', ?)`,
  )
    .bind(id, userId, await sha256(token), t - 3600, t + 86_400, t - 600, client.userAgent ?? null, client.ip ?? null, t - 3600)
    .run();
  return { id, token };
}
