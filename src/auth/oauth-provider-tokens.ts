/**
 * Provider tokens kept for a user (only with `STORE_PROVIDER_TOKENS=true`): sealed at sign-in,
 * read back, decrypted, and renewed with the provider refresh token when the access token is
 * about to expire, so a caller always gets a usable one or a clear error.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { findProvider } from '../providers/registry';
import { providerContext, renewTokens } from '../providers/sign-in';
import { ProviderError, type ProviderTokens } from '../providers/types';
import { findIdentity, findUserIdentity, replaceIdentityTokens } from '../storage/identities';
import { decryptProviderTokens, encryptProviderTokens } from '../tokens/provider-token-crypto';
import { nowSeconds } from '../util/time';
import { recordEvent } from './events';

/** An access token this close to expiry is renewed before it is handed out. */
const RENEW_MARGIN_SECONDS = 60;

type IdentityKey = { provider: string; subject: string };

const fresh = (tokens: ProviderTokens, t: number) => tokens.expiresAt === null || tokens.expiresAt - RENEW_MARGIN_SECONDS > t;

/**
 * The ciphertext to store for a sign-in's tokens, or null when tokens are not kept. Providers
 * issue a refresh token only on consent or the first grant (Google without `prompt=consent`,
 * many OpenID Connect servers on a later sign-in): a sign-in without one keeps the stored one
 * instead of wiping the grant.
 */
export async function sealForStorage(c: Context<AppEnv>, key: IdentityKey, tokens: ProviderTokens): Promise<string | null> {
  const secret = c.get('config').TOKEN_ENCRYPTION_KEY;
  if (!c.get('config').STORE_PROVIDER_TOKENS || !secret) return null;
  let toSeal = tokens;
  if (tokens.refreshToken === null) {
    const identity = await findIdentity(c.env.DB, key.provider, key.subject);
    const stored = identity?.tokensEncrypted ? await decryptProviderTokens(secret, key, identity.tokensEncrypted) : null;
    if (stored?.refreshToken) toSeal = { ...tokens, refreshToken: stored.refreshToken };
  }
  return encryptProviderTokens(secret, key, toSeal);
}

export async function currentProviderTokens(c: Context<AppEnv>, userId: string, providerId: string): Promise<ProviderTokens> {
  const config = c.get('config');
  const secret = config.TOKEN_ENCRYPTION_KEY;
  if (!config.STORE_PROVIDER_TOKENS || !secret) {
    throw new ApiError('not_found', 'This gateway does not keep provider tokens (STORE_PROVIDER_TOKENS is off).');
  }
  const provider = findProvider(config, providerId);
  if (!provider) throw new ApiError('not_found', 'This sign-in provider is not configured on this gateway.');
  const identity = await findUserIdentity(c.env.DB, userId, provider.id);
  const key = identity ? { provider: provider.id, subject: identity.subject } : null;
  const sealed = identity?.tokensEncrypted ?? null;
  const stored = sealed && key ? await decryptProviderTokens(secret, key, sealed) : null;
  if (!stored || !key || !sealed) throw new ApiError('not_found', `No ${provider.name} tokens are kept for this account. Sign in with ${provider.name} to store them.`);

  const t = nowSeconds();
  if (fresh(stored, t)) return stored;
  if (!stored.refreshToken) throw new ApiError('not_found', `The ${provider.name} access token has expired and cannot be renewed. Sign in with ${provider.name} again.`);

  const gone = () => new ApiError('forbidden', `${provider.name} no longer accepts the stored grant. Sign in with ${provider.name} again.`);
  let renewed: ProviderTokens;
  try {
    renewed = await renewTokens(provider, providerContext(config, provider), stored.refreshToken);
  } catch (e) {
    if (!(e instanceof ProviderError)) throw e;
    if (e.kind === 'refused' && e.code === 'invalid_grant') {
      // The grant is gone at the provider, unless a concurrent renewal rotated it first (its
      // new refresh token made ours invalid): clear only what we read, never the winner's grant.
      if (!(await replaceIdentityTokens(c.env.DB, key, sealed, null))) {
        const now = await findIdentity(c.env.DB, key.provider, key.subject);
        const winner = now?.tokensEncrypted ? await decryptProviderTokens(secret, key, now.tokensEncrypted) : null;
        if (winner && fresh(winner, nowSeconds())) return winner;
        throw gone();
      }
      await recordEvent(c, { event: 'provider_tokens_renewal', outcome: 'failure', userId, detail: { provider: provider.id, reason: 'invalid_grant' } });
      throw gone();
    }
    if (e.kind === 'refused') {
      // invalid_client (a wrong secret), invalid_scope, ...: a fault of this gateway's settings or
      // of the provider, not of the user's grant, which is kept for when it is fixed.
      await recordEvent(c, { event: 'provider_tokens_renewal', outcome: 'failure', userId, detail: { provider: provider.id, reason: e.code ?? 'refused' } });
      throw new ApiError('bad_gateway', `${provider.name} refused to renew the token${e.code ? ` (${e.code})` : ''}. The stored grant is kept; try again later.`);
    }
    throw new ApiError(e.kind === 'unavailable' ? 'unavailable' : 'bad_gateway', `${provider.name} could not renew the token: ${e.message}`);
  }
  // Providers that do not rotate refresh tokens send none back: the old one stays valid.
  const next: ProviderTokens = { ...renewed, refreshToken: renewed.refreshToken ?? stored.refreshToken };
  // Lost a race with another renewal: ours is valid to hand out, but the row keeps the winner's.
  await replaceIdentityTokens(c.env.DB, key, sealed, await encryptProviderTokens(secret, key, next));
  await recordEvent(c, { event: 'provider_tokens_renewal', outcome: 'success', userId, detail: { provider: provider.id } });
  return next;
}
