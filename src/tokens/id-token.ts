/**
 * OpenID Connect ID tokens (Core §2, §3.1.3.6): what the token endpoint tells a relying party
 * about the user's sign-in. Always ES256, the one algorithm every relying party must support
 * (Core §15.1): the keyring's active key if it is ES256, else its first ES256 key; a keyring
 * with none cannot serve `openid` (README "Signing keys").
 *
 * `aud` and `azp` are the client, `sid` the gateway session (the one RP-initiated and
 * back-channel logout name), `at_hash` binds the access token issued beside it.
 */
import * as base64url from 'jose/base64url';
import { decodeJwt } from 'jose/jwt/decode';
import { SignJWT } from 'jose/jwt/sign';
import { jwtVerify } from 'jose/jwt/verify';
import { ApiError } from '../http/errors';
import type { Keyring, SigningKey } from '../keys/keyring';
import { nowSeconds } from '../util/time';

/** The ES256 key ID tokens are signed with: the active key if ES256, else the first ES256 one; null if the keyring has none. */
export function idTokenKey(keyring: Keyring): SigningKey | null {
  if (keyring.active.alg === 'ES256') return keyring.active;
  return [...keyring.byKid.values()].find((k) => k.alg === 'ES256') ?? null;
}

/** The refusal when `openid` is asked of a keyring without an ES256 key. */
export const noIdTokenKey = () =>
  new ApiError('configuration_error', 'This gateway cannot issue ID tokens: SIGNING_KEYS holds no ES256 (EC P-256) key.');

/** `at_hash` (Core §3.1.3.6): the left half of SHA-256 of the access token's ASCII, base64url. */
export async function accessTokenHash(accessToken: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken)));
  return base64url.encode(digest.slice(0, digest.length / 2));
}

export interface IdTokenInput {
  issuer: string;
  subject: string;
  clientId: string;
  sessionId: string;
  authTime: number;
  amr: readonly string[];
  /** The `nonce` of the authorization request, if it had one. */
  nonce: string | null;
  accessToken: string;
  ttlSeconds: number;
  /** Given when the scope has `email`. */
  email?: { address: string; verified: boolean };
}

/** Signs an ID token; `configuration_error` when the keyring has no ES256 key. */
export async function issueIdToken(keyring: Keyring, input: IdTokenInput, now = nowSeconds()): Promise<string> {
  const key = idTokenKey(keyring);
  if (!key) throw noIdTokenKey();
  return new SignJWT({
    azp: input.clientId,
    sid: input.sessionId,
    auth_time: input.authTime,
    amr: [...input.amr],
    at_hash: await accessTokenHash(input.accessToken),
    ...(input.nonce === null ? {} : { nonce: input.nonce }),
    ...(input.email ? { email: input.email.address, email_verified: input.email.verified } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(input.issuer)
    .setSubject(input.subject)
    .setAudience(input.clientId)
    .setIssuedAt(now)
    .setExpirationTime(now + input.ttlSeconds)
    .sign(key.privateKey);
}

/**
 * An `id_token_hint` (RP-Initiated Logout 1.0 §2): an ID token we signed, also once expired
 * (the relying party holds one from sign-in). Its signature, issuer and shape are checked as they
 * stood at its expiry. Null for anything else.
 */
export async function verifyIdTokenHint(keyring: Keyring, issuer: string, token: string): Promise<{ clientId: string; subject: string; sessionId: string } | null> {
  if (token.length > 8192) return null;
  let exp: unknown;
  try {
    exp = decodeJwt(token).exp;
  } catch {
    return null;
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return null;
  try {
    const { payload } = await jwtVerify(token, (header) => {
      const key = header.kid === undefined ? undefined : keyring.byKid.get(header.kid);
      if (!key || key.alg !== 'ES256') throw new Error('not our ID token key');
      return key.publicKey;
    }, { issuer, algorithms: ['ES256'], typ: 'JWT', currentDate: new Date((exp - 1) * 1000) });
    const { aud, sub, sid } = payload;
    if (typeof aud !== 'string' || typeof sub !== 'string' || typeof sid !== 'string') return null;
    return { clientId: aud, subject: sub, sessionId: sid };
  } catch {
    return null;
  }
}
