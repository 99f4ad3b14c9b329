/**
 * The directory's (SCIM) group memberships as sessions read them when minting a token: one small
 * query apart from storage/scim.ts, so the token path does not carry the provisioning code.
 */
import { guard } from './errors';

/**
 * The names of the directory's groups `userId` is a member of; null when the directory does not
 * manage the account (it never created, wrote or grouped it, so it vouches for nothing about it).
 * With `onlyWithTokens`, null too when no SCIM token an administrator created exists (SCIM is
 * then off), asked in the same query.
 */
export async function scimGroupNamesOf(db: D1Database, userId: string, onlyWithTokens = false): Promise<string[] | null> {
  const { results } = await guard(() => db
    .prepare(
      `SELECT u.scim_managed_at AS managed, g.display_name FROM users u
       LEFT JOIN scim_group_members m ON m.user_id = u.id LEFT JOIN scim_groups g ON g.id = m.group_id
       WHERE u.id = ? AND (? = 0 OR EXISTS (SELECT 1 FROM scim_tokens)) ORDER BY g.display_name`,
    )
    .bind(userId, onlyWithTokens ? 1 : 0)
    .all<{ managed: number | null; display_name: string | null }>());
  const names = results.flatMap((r) => (r.display_name === null ? [] : [r.display_name]));
  if (names.length === 0 && (results[0]?.managed ?? null) === null) return null;
  return names;
}
