/**
 * A fresh private signing JWK, as `npm run keys:generate` and the development fallback make
 * them. In a module of its own that imports only jose, so that scripts/generate-keys.mjs can
 * import this very file: the scripts' Node 22 strips the types, but it cannot resolve the
 * extensionless imports of the rest of src/.
 */
import type { JWK } from 'jose';
import { calculateJwkThumbprint } from 'jose/jwk/thumbprint';
import { exportJWK } from 'jose/key/export';
import { generateKeyPair } from 'jose/key/generate/keypair';

export type SigningAlgorithm = 'ES256' | 'EdDSA';

export async function generateSigningJwk(alg: SigningAlgorithm = 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const jwk = await exportJWK(privateKey);
  const kid = `${new Date().toISOString().slice(0, 10)}-${(await calculateJwkThumbprint(jwk)).slice(0, 8)}`;
  return { ...jwk, kid, alg, use: 'sig' };
}
