/**
 * Provider tokens at rest: AES-256-GCM (JWE compact, `dir` + A256GCM) under a key derived from
 * `TOKEN_ENCRYPTION_KEY`. The plaintext names the identity it belongs to, so a ciphertext
 * copied onto another row does not decrypt into someone else's tokens.
 */
import { CompactEncrypt, compactDecrypt } from 'jose';
import { providerTokenKey } from '../crypto/derive-key';
import type { ProviderTokens } from '../providers/types';

interface Sealed extends ProviderTokens {
  provider: string;
  subject: string;
}

export async function encryptProviderTokens(secret: string, owner: { provider: string; subject: string }, tokens: ProviderTokens): Promise<string> {
  const plaintext = new TextEncoder().encode(JSON.stringify({ ...tokens, idToken: null, ...owner } satisfies Sealed));
  return new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(await providerTokenKey(secret));
}

/** The tokens, or null if the ciphertext does not decrypt (other key, altered) or names another identity. */
export async function decryptProviderTokens(secret: string, owner: { provider: string; subject: string }, sealed: string): Promise<ProviderTokens | null> {
  try {
    const { plaintext } = await compactDecrypt(sealed, await providerTokenKey(secret), {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    // Authenticated encryption under our own key: only what encryptProviderTokens wrote decrypts.
    const data = JSON.parse(new TextDecoder().decode(plaintext)) as Sealed;
    if (data.provider !== owner.provider || data.subject !== owner.subject || typeof data.accessToken !== 'string') return null;
    return { accessToken: data.accessToken, refreshToken: data.refreshToken ?? null, idToken: null, expiresAt: data.expiresAt ?? null, scopes: data.scopes ?? [] };
  } catch {
    return null;
  }
}
