/**
 * Provider groups and how fresh they are (README "Groups", docs/design.md "Groups"). A provider
 * sign-in leaves its groups with the session, with when they were read; when some route decides
 * on groups, the session also keeps the provider grant (sealed under TOKEN_ENCRYPTION_KEY) to
 * read them again. At refresh, groups older than GROUPS_MAX_AGE are re-read before the refresh
 * token rotates; groups that cannot be re-read are no longer vouched for: with a route deciding
 * on groups the refresh is refused (sign in again), otherwise the session goes on without them.
 * An access token never carries groups older than GROUPS_MAX_AGE ({@link vouchedGroups}).
 */
import type { Context } from 'hono';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { invalidToken } from '../http/errors';
import { log } from '../observability/log';
import { findProvider } from '../providers/registry';
import { providerContext, rereadGroups } from '../providers/sign-in';
import { ProviderError, type Provider, type ProviderProfile, type ProviderTokens } from '../providers/types';
import { findSession, setSessionGroups, type ProviderGroups, type Session } from '../storage/sessions';
import { decryptProviderTokens, encryptProviderTokens } from '../tokens/provider-token-crypto';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { recordEvent } from './events';

/** Development without TOKEN_ENCRYPTION_KEY still demonstrates fresh groups; load.ts requires the key in production. */
const DEVELOPMENT_ONLY_SECRET = 'gatehouse development only: never used in production';

/** The secret that seals kept grants, or undefined when none can be kept. */
function grantSecret(config: Config): string | undefined {
  return config.TOKEN_ENCRYPTION_KEY ?? (config.isDevelopment ? DEVELOPMENT_ONLY_SECRET : undefined);
}

/**
 * What a provider sign-in leaves with its session: null when the provider supplies no groups;
 * otherwise the groups, now, and (only when a route decides on groups) the sealed grant.
 */
export async function groupsAtSignIn(c: Context<AppEnv>, provider: Provider, profile: ProviderProfile, tokens: ProviderTokens): Promise<ProviderGroups | null> {
  if (profile.groups === null) return null;
  const config = c.get('config');
  const secret = grantSecret(config);
  const grant = config.groupsNeeded && secret ? await encryptProviderTokens(secret, { provider: provider.id, subject: profile.subject }, tokens) : null;
  return { groups: profile.groups, readAt: now(), source: { subject: profile.subject, grant } };
}

/**
 * The groups an access token minted now may carry: the session's, unless older than
 * GROUPS_MAX_AGE; null when nobody vouches for any (no provider groups, or too old), which is
 * not the same as a provider saying "none".
 */
export function vouchedGroups(config: Config, session: Pick<Session, 'groups' | 'groupsReadAt'>, t = now()): string[] | null {
  if (session.groups === null || session.groupsReadAt === null) return null;
  return session.groupsReadAt + config.GROUPS_MAX_AGE > t ? session.groups : null;
}

/** The refusal of a refresh whose groups are too old and could not be re-read. */
const groupsUnconfirmed = () =>
  invalidToken('Your group memberships could not be confirmed with your sign-in provider and are too old to use. Sign in again.');

/**
 * Re-reads the groups of `session` (stale: GROUPS_MAX_AGE old) with its kept grant and stores
 * them with the grant the provider left (compare-and-set on the grant read: of two concurrent
 * re-reads the first stored wins, and one that fails after another stored is not a failure).
 * When that is impossible (no grant kept, the provider refuses or cannot be reached): refused with `invalid_token` if a route decides on groups, else the
 * groups are dropped and the session goes on without them.
 */
export async function rereadStaleGroups(c: Context<AppEnv>, userId: string, session: Session): Promise<void> {
  const config = c.get('config');
  const store = sessionsOf(c, userId);
  const source = session.groupSource;
  const expected = source?.grant ?? null;
  const provider = session.provider === null ? null : findProvider(config, session.provider);
  const secret = grantSecret(config);
  let reason = 'no_grant';
  if (provider && source && expected !== null && secret) {
    const owner = { provider: provider.id, subject: source.subject };
    const tokens = await decryptProviderTokens(secret, owner, expected);
    if (tokens) {
      try {
        // Read no later than the call began, or than the provider says it stated them (an ID
        // token's `iat`): the bound runs from when the groups were true, not from when they arrived.
        const started = now();
        const read = await rereadGroups(provider, providerContext(config, provider), source.subject, tokens);
        const grant = await encryptProviderTokens(secret, owner, read.tokens);
        const readAt = Math.min(started, read.asOf ?? started);
        await setSessionGroups(store, session.id, expected, { groups: read.groups, readAt, grant });
        return;
      } catch (e) {
        if (!(e instanceof ProviderError)) throw e;
        // A concurrent refresh of this session (a second tab) re-read them first, with the grant
        // this one holds, which a provider rotating its refresh tokens then refuses: what that one
        // stored stands (and the rotation that follows answers this one as the two-tab loser).
        if ((await findSession(store, session.id))?.groupSource?.grant !== expected) return;
        log.warn('groups_reread_failed', { provider: provider.id, kind: e.kind, code: e.code, detail: e.detail });
        reason = e.code ?? e.kind;
      }
    } else {
      reason = 'grant_unreadable';
    }
  }
  await recordEvent(c, {
    event: 'groups_reread',
    outcome: 'failure',
    userId,
    detail: { sid: session.id, provider: session.provider ?? 'none', reason, refused: config.groupsNeeded },
  });
  if (config.groupsNeeded) throw groupsUnconfirmed();
  await setSessionGroups(store, session.id, expected, { groups: null, readAt: now(), grant: null });
}
