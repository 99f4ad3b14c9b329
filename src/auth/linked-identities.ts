/**
 * Linking another provider to the signed-in user's account (the account page's "Link"): the
 * OAuth flow cookie carries the user id, and the callback adds the identity to that account
 * instead of signing anyone in. Unlike a sign-in (auth/provider-account.ts), no email matching
 * happens: the user is already proven by their session. An identity that belongs to another
 * account is refused and stays where it is.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import type { ProviderProfile } from '../providers/types';
import { findIdentity, insertIdentity } from '../storage/identities';
import { findUserById } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';

/** Links the identity to `userId`; true if it was new, false if it was already theirs. */
export async function linkIdentityToUser(
  c: Context<AppEnv>,
  userId: string,
  providerId: string,
  profile: ProviderProfile,
  tokensEncrypted: string | null,
): Promise<boolean> {
  const user = await findUserById(c.env.DB, userId);
  if (!user || user.disabledAt !== null) throw new ApiError('forbidden', 'This account no longer exists or is disabled.');
  const taken = async () => {
    const existing = await findIdentity(c.env.DB, providerId, profile.subject);
    if (existing && existing.userId !== userId) {
      await recordEvent(c, { event: 'identity_link', outcome: 'failure', userId, detail: { provider: providerId, reason: 'linked_to_another_account' } });
      throw new ApiError('conflict', 'This provider account is already linked to another account here. Unlink it there first.');
    }
    return existing !== null;
  };
  if (await taken()) return false;
  const email = profile.email === null ? null : profile.email.trim().toLowerCase();
  if (!(await insertIdentity(c.env.DB, { provider: providerId, subject: profile.subject, userId, email, tokensEncrypted }, now(), user))) {
    // A concurrent callback inserted it: fine if it is ours, refused otherwise. Not inserted at
    // all: the account changed since it was read (a claim removed the holder's ways in).
    if (await taken()) return false;
    throw new ApiError('forbidden', 'Your account changed meanwhile, so nothing was linked. Sign in and start again from your account page.');
  }
  await recordEvent(c, { event: 'identity_linked', outcome: 'success', userId, detail: { provider: providerId, via: 'account_page' } });
  return true;
}
