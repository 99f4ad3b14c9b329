/** What the account page's "Second factor" card shows (ui/second-factors-card.tsx), and its notices. */
import type { Context } from 'hono';
import { totpAvailable } from '../auth/second-factor-status';
import type { AppEnv } from '../env';
import { countUnusedRecoveryCodes, findTotpFactor } from '../storage/second-factors';

export const SECOND_FACTOR_NOTICES: Record<string, string> = {
  totp_on: 'Your authenticator app is on.',
  totp_removed: 'Your authenticator app and recovery codes have been removed.',
  totp_already_on: 'An authenticator app is already set up. Remove it first to set up another.',
};

export async function secondFactorsCard(c: Context<AppEnv>, userId: string) {
  const [factor, left] = await Promise.all([findTotpFactor(c.env.DB, userId), countUnusedRecoveryCodes(c.env.DB, userId)]);
  return {
    prefix: c.get('config').AUTH_PREFIX,
    available: totpAvailable(c.get('config')),
    totp: factor !== null && factor.confirmedAt !== null,
    recoveryCodesLeft: left,
  };
}
