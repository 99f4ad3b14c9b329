#!/usr/bin/env node
// Prints a new private signing key (JWK) for SIGNING_KEYS and how to install it.
//   npm run keys:generate            -> ES256 key
//   npm run keys:generate -- EdDSA   -> Ed25519 key
import { generateSigningJwk } from '../src/keys/generate-jwk.ts';

const alg = process.argv[2] ?? 'ES256';
if (alg !== 'ES256' && alg !== 'EdDSA') {
  console.error('Usage: npm run keys:generate -- [ES256|EdDSA]');
  process.exit(2);
}
const jwk = await generateSigningJwk(alg);
process.stderr.write(`New ${alg} signing key, kid ${jwk.kid}.

To start using it, make it the FIRST key of SIGNING_KEYS and keep the current keys after it:
  {"keys":[<new key>, <current key>, ...]}
then:  npx wrangler secret put SIGNING_KEYS   (paste the whole JWK Set)
Drop an old key only once the longest token lifetime (ACCESS_TOKEN_TTL) has passed since it stopped signing.

The key (keep it secret):
`);
process.stdout.write(`${JSON.stringify(jwk)}\n`);
