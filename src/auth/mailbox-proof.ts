/**
 * Proof of a mailbox makes an address verified, and takes the account from whoever held it
 * without that proof. The one way every proof goes: a verified provider sign-in (a new identity
 * claiming the account, or a returning one now vouching for its address), a sign-in code, a
 * password reset link and a registration link. What is removed, and why in one D1 batch:
 * storage/mailbox-proof.ts.
 *
 * Sessions live in the user's object, not in D1, so they cannot be in the batch: every session
 * of an unverified account ends before it (object, then KV, as `endAllSessions`): a failure is
 * then a 503 with nothing claimed, and a retry, meeting the account unverified again, completes
 * it. After a batch that claimed, every session ends again: one a sign-in stored between the
 * first pass and the batch (it read the account before the claim) goes too. A sign-in storing
 * its session after the batch sees the account changed and ends it itself (auth/sign-in.ts).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { applyMailboxProof, type PasswordOnProof } from '../storage/mailbox-proof';
import { findUserById, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { endAllSessions } from './sessions';

export interface MailboxProof {
  /** The address proven: it counts only while it is still the account's address. */
  email: string;
  /** How the proof was made, for the audit trail: `{ provider }`, `{ method: 'email_code' }`... */
  via: Record<string, string>;
  password: PasswordOnProof;
  /** The provider identity doing the proving, when it is already linked: it stays. */
  keepIdentity?: { provider: string; subject: string };
}

export interface ProofResult {
  /** The account as it is now (null: it is gone). */
  user: User | null;
  /** True when this proof took the account from unverified to verified (and removed what an unproven holder could have added). */
  claimed: boolean;
  /** With a new password (`set`): whether it was stored. */
  passwordSet: boolean;
}

/**
 * Applies a proof of the mailbox to `user`'s account. Nothing is removed when the address was
 * already verified (a reset still sets its password). Throws on a sessions-object, KV or D1 failure.
 */
export async function proveMailbox(c: Context<AppEnv>, user: User, proof: MailboxProof): Promise<ProofResult> {
  if (!user.emailVerified) await endAllSessions(c, user.id);
  const outcome = await applyMailboxProof(c.env.DB, { userId: user.id, email: proof.email, password: proof.password, keepIdentity: proof.keepIdentity, now: now() });
  if (outcome.claimed) {
    const late = await endAllSessions(c, user.id);
    await recordEvent(c, {
      event: 'account_claimed',
      outcome: 'security',
      userId: user.id,
      detail: {
        ...proof.via,
        removed: { ...outcome.removed, sessions: late.length },
        password: proof.password.kind === 'remove' ? 'removed' : proof.password.kind === 'set' ? 'replaced' : 'kept',
        message: 'Proof of the mailbox verified the address of an unverified account: every session ended, and its passkeys, authenticator, recovery codes, linked identities and mailed links were removed.',
      },
    });
  }
  return { user: await findUserById(c.env.DB, user.id), claimed: outcome.claimed, passwordSet: outcome.passwordSet };
}
