/**
 * Provider tokens kept for a user (only with `STORE_PROVIDER_TOKENS=true`): read back,
 * decrypted, and renewed with the provider refresh token when the access token is about to
 * expire, so a caller always gets a usable one or a clear error.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { findProvider } from '../providers/registry';
import { providerContext, renewTokens } from '../providers/sign-in';
import { ProviderError, type ProviderTokens } from '../providers/types';
import { findUserIdentity, setIdentityTokens } from '../storage/identities';
import { decryptProviderTokens, encryptProviderTokens } from '../tokens/provider-token-crypto';
import { audit } from './sessions';

/** An access token this close to expiry is renewed before it is handed out. */
const RENEW_MARGIN_SECONDS = 60;

export async function currentProviderTokens(c: Context<AppEnv>, userId: string, providerId: string): Promise<ProviderTokens> {
  const config = c.get('config');
  if (!config.STORE_PROVIDER_TOKENS || !config.TOKEN_ENCRYPTION_KEY) {
    throw new ApiError('not_found', 'This gateway does not keep provider tokens (STORE_PROVIDER_TOKENS is off).');
  }
  const provider = findProvider(config, providerId);
  if (!provider) throw new ApiError('not_found', 'This sign-in provider is not configured on this gateway.');
  const identity = await findUserIdentity(c.env.DB, userId, provider.id);
  const key = identity ? { provider: provider.id, subject: identity.subject } : null;
  const stored = identity?.tokensEncrypted && key ? await decryptProviderTokens(config.TOKEN_ENCRYPTION_KEY, key, identity.tokensEncrypted) : null;
  if (!stored || !key) throw new ApiError('not_found', `No ${provider.name} tokens are kept for this account. Sign in with ${provider.name} to store them.`);

  const t = Math.floor(Date.now() / 1000);
  if (stored.expiresAt === null || stored.expiresAt - RENEW_MARGIN_SECONDS > t) return stored;
  if (!stored.refreshToken) throw new ApiError('not_found', `The ${provider.name} access token has expired and cannot be renewed. Sign in with ${provider.name} again.`);

  let renewed: ProviderTokens;
  try {
    renewed = await renewTokens(provider, providerContext(config, provider), stored.refreshToken);
  } catch (e) {
    if (!(e instanceof ProviderError)) throw e;
    if (e.kind === 'refused') {
      // The grant is gone at the provider: keeping it would only fail again.
      await setIdentityTokens(c.env.DB, key, null);
      await audit(c, { event: 'provider_tokens_renewal', outcome: 'failure', userId, detail: { provider: provider.id, reason: 'refused' } });
      throw new ApiError('forbidden', `${provider.name} no longer accepts the stored grant. Sign in with ${provider.name} again.`);
    }
    throw new ApiError(e.kind === 'unavailable' ? 'unavailable' : 'bad_gateway', `${provider.name} could not renew the token: ${e.message}`);
  }
  // Providers that do not rotate refresh tokens send none back: the old one stays valid.
  const next: ProviderTokens = { ...renewed, refreshToken: renewed.refreshToken ?? stored.refreshToken };
  await setIdentityTokens(c.env.DB, key, await encryptProviderTokens(config.TOKEN_ENCRYPTION_KEY, key, next));
  await audit(c, { event: 'provider_tokens_renewal', outcome: 'success', userId, detail: { provider: provider.id } });
  return next;
}
