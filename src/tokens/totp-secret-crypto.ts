/**
 * Authenticator-app secrets at rest: AES-256-GCM (JWE compact, `dir` + A256GCM), as provider
 * tokens are. The plaintext names the user, so a ciphertext copied onto another user's row does
 * not decrypt into a secret for them.
 */
import { CompactEncrypt, compactDecrypt } from 'jose';

export async function sealTotpSecret(key: Uint8Array, userId: string, secretBase32: string): Promise<string> {
  const plaintext = new TextEncoder().encode(JSON.stringify({ u: userId, s: secretBase32 }));
  return new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(key);
}

/** The base32 secret, or null if it does not decrypt (other key, altered) or belongs to another user. */
export async function openTotpSecret(key: Uint8Array, userId: string, sealed: string): Promise<string | null> {
  try {
    const { plaintext } = await compactDecrypt(sealed, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    const data: unknown = JSON.parse(new TextDecoder().decode(plaintext));
    if (typeof data !== 'object' || data === null || !('u' in data) || !('s' in data)) return null;
    return data.u === userId && typeof data.s === 'string' ? data.s : null;
  } catch {
    return null;
  }
}
