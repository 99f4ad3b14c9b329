/**
 * Symmetric keys derived with HKDF-SHA256 (WebCrypto): one input secret, a distinct `info`
 * label per use, so no two uses ever share a key.
 */
import * as base64url from 'jose/base64url';
import type { Config } from '../config/schema';
import { randomBytes } from '../util/random';
import { memoize } from '../util/memo';

export async function hkdf(secret: Uint8Array, info: string, bytes = 32): Promise<Uint8Array> {
  const ikm = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: new TextEncoder().encode('gatehouse'), info: new TextEncoder().encode(info) },
    ikm,
    bytes * 8,
  );
  return new Uint8Array(bits);
}

/** The private scalar (`d`) and `kid` of the first (active) key of `SIGNING_KEYS`, if any. */
function activeSigningSecret(signingKeys: unknown): { d: Uint8Array; kid: string } | null {
  const set = Array.isArray(signingKeys) ? { keys: signingKeys } : signingKeys;
  const keys: unknown = typeof set === 'object' && set !== null && 'keys' in set ? set.keys : undefined;
  const first: unknown = Array.isArray(keys) ? keys[0] : undefined;
  if (typeof first !== 'object' || first === null || !('d' in first) || typeof first.d !== 'string') return null;
  return { d: base64url.decode(first.d), kid: 'kid' in first && typeof first.kid === 'string' ? first.kid : '' };
}

/**
 * The key that encrypts the OAuth flow cookie, once per isolate. Derived from the active
 * signing key rather than a secret of its own: that key is always configured in production,
 * never leaves the gateway, and rotating it (with its `kid` in the label) also rotates this
 * key, at the cost of a retry for sign-ins in flight (10 minutes at most). In development
 * without `SIGNING_KEYS` the keyring itself is random per isolate, and so is this key.
 */
export const flowCookieKey = memoize((config: Config): Promise<Uint8Array> => {
  const secret = activeSigningSecret(config.SIGNING_KEYS);
  return secret ? hkdf(secret.d, `oauth-flow-cookie/v1/${secret.kid}`) : Promise.resolve(randomBytes(32));
});

/**
 * The HMAC key of the consent form's token (auth/oauth-authorize.ts), once per isolate: from the
 * active signing key under a label of its own, as {@link flowCookieKey} and for the same reasons
 * (a rotation only asks a user with a consent page open to start again).
 */
export const consentFormKey = memoize((config: Config): Promise<Uint8Array> => {
  const secret = activeSigningSecret(config.SIGNING_KEYS);
  return secret ? hkdf(secret.d, `oauth-consent-form/v1/${secret.kid}`) : Promise.resolve(randomBytes(32));
});

const tokenKeys = new Map<string, Promise<Uint8Array>>();

/**
 * The AES-256-GCM key for provider tokens at rest, from the `TOKEN_ENCRYPTION_KEY` secret (any
 * string of 32+ characters, e.g. `openssl rand -base64 32`; HKDF makes its format irrelevant).
 */
export function providerTokenKey(secret: string): Promise<Uint8Array> {
  let key = tokenKeys.get(secret);
  if (!key) {
    key = hkdf(new TextEncoder().encode(secret), 'provider-tokens/v1');
    tokenKeys.set(secret, key);
  }
  return key;
}
