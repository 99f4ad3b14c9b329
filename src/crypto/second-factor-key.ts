/**
 * The AES-256-GCM key for authenticator-app (TOTP) secrets at rest, once per isolate.
 *
 * Derived with HKDF under its own label from `TOKEN_ENCRYPTION_KEY`, the gateway's secret for
 * data at rest: one secret for the operator to keep, two unrelated keys. Not from the signing
 * keys (as the OAuth flow cookie's is): rotating those must not make every enrolled
 * authenticator unusable. In development without the secret a fixed key is used, so local
 * enrolments survive a restart; production without it offers no authenticator apps.
 */
import type { Config } from '../config/schema';
import { memoize } from '../util/memo';
import { hkdf } from './derive-key';

const DEVELOPMENT_ONLY_SECRET = 'gatehouse development only: never used in production';

/** The key, or null when authenticator apps cannot be offered (production without the secret). */
export const totpSecretKey = memoize((config: Config): Promise<Uint8Array> | null => {
  const secret = config.TOKEN_ENCRYPTION_KEY ?? (config.isDevelopment ? DEVELOPMENT_ONLY_SECRET : undefined);
  return secret === undefined ? null : hkdf(new TextEncoder().encode(secret), 'totp-secrets/v1');
});
