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
import type { User } from '../storage/users';

/**
 * The user's directory groups, read on the primary (a removal must not be read back from a lagging
 * replica); null when SCIM is off (neither SCIM_TOKEN nor a token an administrator created: then
 * no source vouches for `scim:` names), and null while the account's address is unproven: the
 * directory's memberships are for the person who owns the address, and an account someone registered with it before the directory matched it by
 * `userName` may be a stranger's (neither in the groups nor "in none" of them); null too for an
 * account the directory does not manage (never created, wrote or grouped): it vouches for no
 * group of a person it does not assign to the gateway.
 */
export async function directoryGroups(c: Context<AppEnv>, user: Pick<User, 'id' | 'emailVerified' | 'scimManagedAt'>): Promise<string[] | null> {
  if (!user.emailVerified) return null;
  const byTokensOnly = c.get('config').SCIM_TOKEN === undefined;
  // Without SCIM_TOKEN, SCIM is on only while an administrator's token exists, which the same read
  // asks; and an account the user row (perhaps a replica's) shows unmanaged costs no read at all,
  // so a gateway without SCIM reads nothing more per token. A replica behind by a first write of
  // the directory leaves the claim out (unknown, refused) until the next refresh: never "in none".
  if (byTokensOnly && user.scimManagedAt === null) return null;
  const names = await scimGroupNamesOf(c.env.DB, user.id, byTokensOnly);
  if (names === null) return null;
  const kept = boundedGroups(names, 'scim');
  // Cut by the bound: the token cannot say the user is in none of the groups it leaves out, so it
  // says nothing (a rule on a `scim:` group is unknown, and refuses) rather than "in none".
  return kept.length === names.length ? kept : null;
}
