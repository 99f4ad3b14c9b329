/** Random identifiers and secrets from WebCrypto's CSPRNG, base64url-encoded. */
import * as base64url from 'jose/base64url';

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** `bytes` random bytes as base64url text (16 bytes = 128 bits). */
export function randomId(bytes = 16): string {
  return base64url.encode(randomBytes(bytes));
}

/** SHA-256 of a string, base64url-encoded: how refresh tokens are stored. */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return base64url.encode(new Uint8Array(digest));
}
