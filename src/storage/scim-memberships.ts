/**
 * The directory's (SCIM) group memberships as sessions read them when minting a token: one small
 * query apart from storage/scim.ts, so the token path does not carry the provisioning code.
 */
import { guard } from './errors';

/** The names of the directory's groups `userId` is a member of. */
export async function scimGroupNamesOf(db: D1Database, userId: string): Promise<string[]> {
  const { results } = await guard(() => db
    .prepare('SELECT g.display_name FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.display_name')
    .bind(userId)
    .all<{ display_name: string }>());
  return results.map((r) => r.display_name);
}
