/**
 * Who a provider sign-in belongs to. An identity is keyed by (provider, subject). A new
 * identity joins an existing account only through an email the provider says is verified;
 * otherwise it creates an account (when registration is open) or is refused.
 * `ALLOWED_EMAIL_DOMAINS` needs a verified address: anyone can type a domain into an
 * unverified one. A verified sign-in that meets an unverified account claims it (see
 * auth/mailbox-proof.ts): nobody who registered the address without proving it keeps access.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import type { ProviderProfile } from '../providers/types';
import { findIdentity, insertIdentity, touchIdentity } from '../storage/identities';
import { createUser, findUserByEmail, findUserById, normaliseEmail, updateProfile, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { ASCII_ONLY, MAX_EMAIL_LENGTH } from './email-address';
import { emailDomainAllowed } from './roles';
import { recordEvent } from './events';
import { proveMailbox } from './mailbox-proof';

const emailSchema = v.pipe(v.string(), v.email());

/**
 * The provider's email, normalised; null when it shared none; `{ problem }` when it sent
 * something that is not a usable address. That is refused, never repaired: a shortened address
 * is someone else's address, and a folded non-ASCII one can be (see email-address.ts).
 */
function providerEmail(profile: ProviderProfile): string | null | { problem: string } {
  if (profile.email === null) return null;
  if (!ASCII_ONLY.test(profile.email)) return { problem: 'contains characters outside ASCII, which this gateway does not accept in email addresses' };
  const email = normaliseEmail(profile.email);
  if (email.length > MAX_EMAIL_LENGTH) return { problem: `is longer than ${MAX_EMAIL_LENGTH} characters, so it is not an email address` };
  return v.is(emailSchema, email) && email.split('@').length === 2 ? email : { problem: 'is not a plain email address' };
}

function domainPolicyAllows(c: Context<AppEnv>, email: string, verified: boolean): boolean {
  const config = c.get('config');
  if (config.ALLOWED_EMAIL_DOMAINS.length === 0) return true;
  return verified && emailDomainAllowed(email, config);
}

const refuse = async (c: Context<AppEnv>, providerId: string, reason: string, error: ApiError, userId: string | null = null): Promise<never> => {
  await recordEvent(c, { event: 'oauth_login', outcome: 'failure', userId, detail: { provider: providerId, reason } });
  throw error;
};

export interface ProviderAccount {
  user: User;
  /** How the identity met its account this time. */
  how: 'returning' | 'linked' | 'created';
}

/**
 * Finds or creates the account for a verified provider profile. Throws {@link ApiError}
 * (`forbidden`, `conflict`) with a message fit for the user.
 */
export async function resolveProviderAccount(
  c: Context<AppEnv>,
  providerId: string,
  profile: ProviderProfile,
  tokensEncrypted: string | null,
): Promise<ProviderAccount> {
  const db = c.env.DB;
  const config = c.get('config');
  const t = now();
  const reported = providerEmail(profile);
  if (reported !== null && typeof reported === 'object') {
    return refuse(c, providerId, 'unusable_email', new ApiError('forbidden', `The email address the provider reported ${reported.problem}. Nobody can be signed in with it.`));
  }
  const email = reported;
  const verified = email !== null && profile.emailVerified;
  const key = { provider: providerId, subject: profile.subject };
  const keepTokens = tokensEncrypted === null ? {} : { tokensEncrypted };

  const identity = await findIdentity(db, providerId, profile.subject);
  if (identity) {
    let user = await findUserById(db, identity.userId);
    if (!user) return refuse(c, providerId, 'identity_without_user', new ApiError('forbidden', 'This account no longer exists.'));
    if (user.disabledAt !== null) return refuse(c, providerId, 'disabled', new ApiError('forbidden', 'This account is disabled.'), user.id);
    if (!domainPolicyAllows(c, user.email, user.emailVerified)) {
      return refuse(c, providerId, 'domain_not_allowed', new ApiError('forbidden', 'Accounts with this email domain are not allowed.'), user.id);
    }
    await touchIdentity(db, key, { email, ...keepTokens }, t);
    if (verified && email === user.email && !user.emailVerified) {
      // The provider now vouches for the address of an account it signs in to: the address is
      // proven, and whatever an unproven holder added goes (this identity stays).
      const proved = await proveMailbox(c, user, { email, via: { provider: providerId }, password: { kind: 'remove' }, keepIdentity: key });
      if (!proved.user) return refuse(c, providerId, 'identity_without_user', new ApiError('forbidden', 'This account no longer exists.'));
      user = proved.user;
    }
    if ((!user.name && profile.name) || (!user.avatarUrl && profile.avatarUrl)) {
      await updateProfile(db, user.id, { name: user.name ? null : profile.name, avatarUrl: user.avatarUrl ? null : profile.avatarUrl }, t);
      user = { ...user, name: user.name ?? profile.name, avatarUrl: user.avatarUrl ?? profile.avatarUrl };
    }
    return { user, how: 'returning' };
  }

  if (email === null) {
    return refuse(c, providerId, 'no_email', new ApiError('forbidden', 'The provider did not share a usable email address, so no account can be matched or created.'));
  }

  const existing = await findUserByEmail(db, email);
  if (existing) {
    if (!verified) {
      // An unverified address proves nothing: it must never open someone's account.
      return refuse(
        c,
        providerId,
        'unverified_email_matches_account',
        new ApiError('conflict', 'An account with this email already exists, and the provider did not confirm that the address is yours. Sign in the way you did before.'),
        existing.id,
      );
    }
    if (existing.disabledAt !== null) return refuse(c, providerId, 'disabled', new ApiError('forbidden', 'This account is disabled.'), existing.id);
    if (!domainPolicyAllows(c, email, true)) {
      return refuse(c, providerId, 'domain_not_allowed', new ApiError('forbidden', 'Accounts with this email domain are not allowed.'), existing.id);
    }
    let user = existing;
    // Claim first: it unlinks the identities an unproven account had, and must not unlink this one.
    if (!existing.emailVerified) {
      const proved = await proveMailbox(c, existing, { email, via: { provider: providerId }, password: { kind: 'remove' } });
      if (!proved.user) return refuse(c, providerId, 'identity_without_user', new ApiError('forbidden', 'This account no longer exists.'));
      user = proved.user;
    }
    if (!(await insertIdentity(db, { ...key, userId: existing.id, email, tokensEncrypted }, t))) {
      // A concurrent callback created it first: accept only if it points at the same account.
      const raced = await findIdentity(db, providerId, profile.subject);
      if (raced?.userId !== existing.id) return refuse(c, providerId, 'identity_race', new ApiError('conflict', 'This sign-in is already being processed. Try again.'));
    }
    await recordEvent(c, { event: 'identity_linked', outcome: 'success', userId: user.id, detail: { provider: providerId } });
    return { user, how: 'linked' };
  }

  if (config.REGISTRATION === 'closed') {
    return refuse(c, providerId, 'registration_closed', new ApiError('forbidden', 'Registration is closed on this gateway: only existing accounts can sign in.'));
  }
  if (!domainPolicyAllows(c, email, verified)) {
    return refuse(
      c,
      providerId,
      'domain_not_allowed',
      new ApiError('forbidden', verified ? 'Accounts with this email domain are not allowed.' : 'The provider did not confirm your email address, which this gateway requires.'),
    );
  }
  const user = await createUser(db, { email, emailVerified: verified, name: profile.name, avatarUrl: profile.avatarUrl }, t);
  if (!user) return refuse(c, providerId, 'email_race', new ApiError('conflict', 'An account with this email was just created. Try again.'));
  if (!(await insertIdentity(db, { ...key, userId: user.id, email, tokensEncrypted }, t))) {
    return refuse(c, providerId, 'identity_race', new ApiError('conflict', 'This sign-in is already being processed. Try again.'), user.id);
  }
  await recordEvent(c, { event: 'register', outcome: 'success', userId: user.id, detail: { provider: providerId } });
  return { user, how: 'created' };
}
