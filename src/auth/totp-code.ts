/**
 * RFC 6238 codes (SHA-1, 6 digits, 30 s: what every authenticator app supports) with otpauth.
 *
 * Its "bare" build is used, with node:crypto's HMAC: the full build bundles a second SHA
 * implementation (7 KiB gzip) the runtime already has, and otpauth needs the HMAC synchronously,
 * which WebCrypto is not. node:crypto is loaded on first use (as for password hashing), and this
 * module itself only by the handlers that need it (dynamic import): never on the proxy path.
 */
import { Secret, TOTP } from 'otpauth/bare';

export const TOTP_PERIOD = 30;
const DIGITS = 6;
const ALGORITHM = 'SHA1';
/** One step either side: a code typed just as it rolls over, or a phone clock 30 s off. */
const WINDOW = 1;

type Hmac = (algorithm: string, key: Uint8Array, message: Uint8Array) => Uint8Array;
let hmac: Hmac | undefined;

async function hmacFn(): Promise<Hmac> {
  if (!hmac) {
    const { createHmac } = await import('node:crypto');
    hmac = (algorithm, key, message) => new Uint8Array(createHmac(algorithm.toLowerCase(), key).update(message).digest());
  }
  return hmac;
}

/** A new 160-bit secret (RFC 4226's recommended length), base32 as authenticator apps take it. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

async function totp(secretBase32: string, issuer = '', label = ''): Promise<TOTP> {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secretBase32), algorithm: ALGORITHM, digits: DIGITS, period: TOTP_PERIOD, hmac: await hmacFn() });
}

/** The `otpauth://` URI the QR code holds. */
export async function otpauthUri(secretBase32: string, issuer: string, account: string): Promise<string> {
  return (await totp(secretBase32, issuer, account)).toString();
}

/** The time step the code belongs to (within one step of now), or null if it matches none. */
export async function matchingStep(secretBase32: string, code: string, nowMs: number): Promise<number | null> {
  const delta = (await totp(secretBase32)).validate({ token: code, timestamp: nowMs, window: WINDOW });
  return delta === null ? null : Math.floor(nowMs / 1000 / TOTP_PERIOD) + delta;
}

/** Recovery codes: 80 random bits each, as 16 base32 letters shown in groups of four. */
export function newRecoveryCode(): string {
  const letters = new Secret({ size: 10 }).base32.toLowerCase();
  return letters.match(/.{4}/g)!.join('-');
}
