/**
 * Password hashing in a versioned format, `alg$params$salt$hash`.
 *
Current: scrypt with the parameters of auth/password-cost.ts. PBKDF2 would be capped at
 * 100,000 iterations on Workers, a sixth of OWASP's 600,000 for PBKDF2-SHA256, so it is only
 * read (legacy hashes) and re-hashed on the next sign-in. scrypt comes from `node:crypto`
 * (nodejs_compat) because WebCrypto has no memory-hard KDF.
 */
import { timingSafeEqual } from 'hono/utils/buffer';
import { base64url } from 'jose';
import { randomBytes } from '../util/random';
import { CURRENT_SCRYPT, type ScryptParams } from './password-cost';

export { CURRENT_SCRYPT, type ScryptParams } from './password-cost';

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

// node:crypto is loaded on the first hash, not at start-up: a static import makes every
// isolate evaluate it and the workerd Node internals it pulls in (streams, zlib constants...),
// which the start-up profile shows as several ms; most isolates never hash a password.
let nodeCrypto: Promise<typeof import('node:crypto')> | undefined;

async function scrypt(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  const { scrypt: scryptCallback } = await (nodeCrypto ??= import('node:crypto'));
  return new Promise((resolve, reject) => {
    scryptCallback(
      password,
      salt,
      KEY_LENGTH,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r },
      (err, key) => (err ? reject(err) : resolve(new Uint8Array(key))),
    );
  });
}

async function pbkdf2(password: string, salt: Uint8Array, iterations: number, length: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, length * 8);
  return new Uint8Array(bits);
}

/**
 * Constant-time comparison of two hashes. hono's `timingSafeEqual` compares the SHA-256 of each
 * side and then the sides themselves, with no early exit, so the time depends on the lengths
 * only. Its byte-array form is deprecated, hence the (injective) base64url text.
 */
function equal(a: Uint8Array, b: Uint8Array): Promise<boolean> {
  return timingSafeEqual(base64url.encode(a), base64url.encode(b));
}

export async function hashPassword(password: string, params: ScryptParams = CURRENT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const hash = await scrypt(password, salt, params);
  return `scrypt$N=${params.N},r=${params.r},p=${params.p}$${base64url.encode(salt)}$${base64url.encode(hash)}`;
}

interface Parsed {
  alg: 'scrypt' | 'pbkdf2-sha256';
  params: Record<string, number>;
  salt: Uint8Array;
  hash: Uint8Array;
}

function parse(stored: string): Parsed | null {
  const parts = stored.split('$');
  if (parts.length !== 4) return null;
  const [alg, paramText, salt, hash] = parts as [string, string, string, string]; // four parts: checked above
  if (alg !== 'scrypt' && alg !== 'pbkdf2-sha256') return null;
  const params: Record<string, number> = {};
  for (const kv of paramText.split(',')) {
    const [k, val] = kv.split('=');
    if (!k || !val || !/^\d+$/.test(val)) return null;
    params[k] = Number(val);
  }
  try {
    return { alg, params, salt: base64url.decode(salt), hash: base64url.decode(hash) };
  } catch {
    return null;
  }
}

export interface VerifyResult {
  ok: boolean;
  /** The hash is valid but made with older parameters: store a fresh one. */
  needsRehash: boolean;
}

export async function verifyPassword(password: string, stored: string): Promise<VerifyResult> {
  const parsed = parse(stored);
  if (!parsed) return { ok: false, needsRehash: false };
  if (parsed.alg === 'scrypt') {
    const { N, r, p } = parsed.params;
    if (!N || !r || !p || N > 2 ** 17 || r > 16 || p > 16) return { ok: false, needsRehash: false };
    const actual = await scrypt(password, parsed.salt, { N, r, p });
    const ok = await equal(actual, parsed.hash);
    const current = N === CURRENT_SCRYPT.N && r === CURRENT_SCRYPT.r && p === CURRENT_SCRYPT.p;
    return { ok, needsRehash: ok && !current };
  }
  const i = parsed.params.i;
  if (!i || i > 100_000) return { ok: false, needsRehash: false };
  const actual = await pbkdf2(password, parsed.salt, i, parsed.hash.length);
  const ok = await equal(actual, parsed.hash);
  return { ok, needsRehash: ok };
}

let dummy: Promise<string> | undefined;

/**
 * Burns the same work as a real verification, for sign-ins with an unknown email, so that
 * timing does not tell which emails have accounts.
 */
export async function verifyDummy(password: string): Promise<void> {
  dummy ??= hashPassword('gatehouse-dummy-password');
  await verifyPassword(password, await dummy);
}
