/**
 * The directory's (SCIM) groups in access tokens (README "SCIM provisioning"): each token minted
 * while SCIM is on carries the user's memberships as read then, as `scim:<name>`, bounded as a
 * provider's groups are. So a membership the directory adds or removes reaches route policy at
 * the user's next refresh, within ACCESS_TOKEN_TTL (shorter than the provider groups' bound).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { boundedGroups } from '../providers/groups';
import { scimGroupNamesOf } from '../storage/scim-memberships';

/**
 * The user's directory groups, read on the primary (a removal must not be read back from a lagging
 * replica); null when SCIM is off (then no source vouches for `scim:` names).
 */
export async function directoryGroups(c: Context<AppEnv>, userId: string): Promise<string[] | null> {
  if (c.get('config').SCIM_TOKEN === undefined) return null;
  return boundedGroups(await scimGroupNamesOf(c.env.DB, userId), 'scim');
}
