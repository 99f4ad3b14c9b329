/**
 * The gateway's signing keys: parsed from the `SIGNING_KEYS` JWK Set and imported into
 * WebCrypto once per isolate. The first key signs; every key verifies and is published.
 */
import { calculateJwkThumbprint } from 'jose/jwk/thumbprint';
import { importJWK } from 'jose/key/import';
import type { JWK } from 'jose';
import { ConfigError } from '../config/load';
import type { Config } from '../config/schema';
import { log } from '../observability/log';
import { memoize } from '../util/memo';
import { generateSigningJwk, type SigningAlgorithm } from './generate-jwk';

export { generateSigningJwk, type SigningAlgorithm };

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** Public members only, with `kid`, `alg` and `use`. */
  publicJwk: JWK;
}

export interface Keyring {
  active: SigningKey;
  byKid: ReadonlyMap<string, SigningKey>;
  /** The algorithms our keys use: verification accepts nothing else. */
  algorithms: SigningAlgorithm[];
  /** The JWK Set served at `/.well-known/jwks.json`. */
  jwks: { keys: JWK[] };
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'] as const;

function algorithmFor(jwk: JWK, index: number): SigningAlgorithm {
  const fail = (why: string) => new ConfigError('SIGNING_KEYS', `key ${index + 1}: ${why}`);
  let alg: SigningAlgorithm;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') alg = 'ES256';
  else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') alg = 'EdDSA';
  else throw fail('must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key');
  if (jwk.alg !== undefined && jwk.alg !== alg && !(alg === 'EdDSA' && jwk.alg === 'Ed25519')) {
    throw fail(`"alg" ${JSON.stringify(jwk.alg)} does not match the key type (expected ${alg})`);
  }
  if (typeof jwk.d !== 'string') throw fail('must be a private key (no "d" member)');
  return alg;
}

async function importKey(jwk: JWK, index: number): Promise<SigningKey> {
  const alg = algorithmFor(jwk, index);
  const publicMembers: JWK = { ...jwk };
  for (const m of PRIVATE_MEMBERS) delete publicMembers[m];
  delete publicMembers.key_ops;
  delete publicMembers.ext;
  const kid = typeof jwk.kid === 'string' && jwk.kid ? jwk.kid : await calculateJwkThumbprint(publicMembers);
  const publicJwk: JWK = { ...publicMembers, kid, alg, use: 'sig' };
  try {
    // importJWK gives a Uint8Array only for symmetric ("oct") keys; algorithmFor admitted EC and OKP only.
    const privateKey = (await importJWK({ ...jwk, alg, key_ops: undefined, ext: undefined }, alg)) as CryptoKey;
    const publicKey = (await importJWK(publicJwk, alg)) as CryptoKey;
    return { kid, alg, privateKey, publicKey, publicJwk };
  } catch {
    throw new ConfigError('SIGNING_KEYS', `key ${index + 1} (kid ${kid}) could not be imported`);
  }
}

function keyList(value: unknown): JWK[] {
  const set = Array.isArray(value) ? { keys: value } : value;
  const keys: unknown = set && typeof set === 'object' && 'keys' in set ? set.keys : undefined;
  if (!Array.isArray(keys)) throw new ConfigError('SIGNING_KEYS', 'must be a JWK Set: {"keys":[...]}');
  if (keys.length === 0) throw new ConfigError('SIGNING_KEYS', 'holds no keys');
  keys.forEach((k, i) => {
    if (!k || typeof k !== 'object' || Array.isArray(k)) throw new ConfigError('SIGNING_KEYS', `key ${i + 1} is not a JWK object`);
  });
  // Checked only as objects here: every member is checked where it is read (algorithmFor,
  // importKey) and again by jose's importJWK, and a failure there is a ConfigError too.
  return keys as JWK[];
}

/** Builds a keyring from a parsed JWK Set of private keys. */
export async function keyringFromJwks(value: unknown): Promise<Keyring> {
  const keys = await Promise.all(keyList(value).map(importKey));
  const byKid = new Map<string, SigningKey>();
  for (const key of keys) {
    if (byKid.has(key.kid)) throw new ConfigError('SIGNING_KEYS', `two keys share kid ${key.kid}`);
    byKid.set(key.kid, key);
  }
  return {
    active: keys[0]!,
    byKid,
    algorithms: [...new Set(keys.map((k) => k.alg))],
    jwks: { keys: keys.map((k) => k.publicJwk) },
  };
}

/**
 * The keyring for this isolate. In development with no `SIGNING_KEYS`, a key is generated in
 * memory (tokens then die with the isolate) and a warning is logged. A failed import is not
 * cached as a success, but it is cached: the config is fixed per isolate.
 */
export const getKeyring = memoize(async (config: Config): Promise<Keyring> => {
  if (config.SIGNING_KEYS === undefined) {
    log.warn('dev_signing_key_generated', {
      message: 'SIGNING_KEYS is not set: using a key generated in memory (development only). Run `npm run dev` to get a persistent one in .dev.vars.',
    });
    return keyringFromJwks({ keys: [await generateSigningJwk()] });
  }
  const keyring = await keyringFromJwks(config.SIGNING_KEYS);
  if (!keyring.algorithms.includes('ES256')) {
    log.warn('no_es256_signing_key', { message: 'SIGNING_KEYS holds no ES256 (EC P-256) key: apps asking for `openid` get configuration_error (ID tokens are ES256).' });
  }
  return keyring;
});
