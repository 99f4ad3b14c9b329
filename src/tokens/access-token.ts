/**
 * Access tokens: short-lived JWTs (`typ: at+jwt`) signed with the keyring's active key.
 * Verification pins the algorithm to our keys', resolves the key only by a `kid` we know,
 * and refuses tokens that carry key material of their own.
 */
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { SignJWT } from 'jose/jwt/sign';
import { jwtVerify } from 'jose/jwt/verify';
import * as v from 'valibot';
import { ApiError, invalidToken } from '../http/errors';
import type { Keyring, SigningKey } from '../keys/keyring';
import { randomId } from '../util/random';
import { CLOCK_TOLERANCE_S, nowSeconds } from '../util/time';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** Longer strings are refused before any parsing: our own tokens are far shorter. */
export const MAX_TOKEN_LENGTH = 4096;

/**
 * The refusal of a token we signed whose lifetime is over: an `invalid_token` like any other,
 * but sign-out tells it apart from a token that is not ours (an old token of ours ends nothing,
 * and is no reason to refuse a sign-out).
 */
export class ExpiredTokenError extends ApiError {
  constructor() {
    super('invalid_token', 'The access token has expired.');
  }
}

/** `sub`, `sid`, `jti`: non-empty, and never longer than any id we issue. */
const idClaim = v.pipe(v.string(), v.minLength(1), v.maxLength(256));

/**
 * The claims an access token must carry beyond what jose checks (signature, `iss`, `aud`,
 * `typ`, lifetime). Built once per isolate; parsed once per verification (cache misses only).
 */
const accessClaimsSchema = v.object({
  sub: idClaim,
  sid: idClaim,
  jti: idClaim,
  iat: v.number(),
  exp: v.number(),
  email: v.string(),
  email_verified: v.boolean(),
  roles: v.array(v.string()),
});

export type AccessClaims = v.InferOutput<typeof accessClaimsSchema>;

export interface TokenContext {
  keyring: Keyring;
  issuer: string;
  audience: string;
}

export interface IssueInput {
  userId: string;
  sessionId: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  ttlSeconds: number;
}

export async function issueAccessToken(ctx: TokenContext, input: IssueInput, now = nowSeconds()) {
  const key = ctx.keyring.active;
  const jti = randomId(16);
  const exp = now + input.ttlSeconds;
  const token = await new SignJWT({
    sid: input.sessionId,
    email: input.email,
    email_verified: input.emailVerified,
    roles: input.roles,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(ctx.issuer)
    .setAudience(ctx.audience)
    .setSubject(input.userId)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(key.privateKey);
  return { token, jti, expiresAt: exp, expiresIn: input.ttlSeconds };
}

const FOREIGN_KEY_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'] as const;
/**
 * The only header parameters our tokens carry. Anything else (`zip`, `b64`, `cty`, private
 * names) changes how a token is read or is something we never sign: refused, not ignored.
 */
const ALLOWED_HEADERS: ReadonlySet<string> = new Set(['alg', 'kid', 'typ']);

/**
 * Finds the verification key for a JWS header, or refuses the token. jose hands it the
 * protected header it has already decoded, so the check costs no extra parsing.
 */
export function keyResolver(keyring: Keyring) {
  return (header: JWTHeaderParameters): CryptoKey => {
    for (const name of FOREIGN_KEY_HEADERS) {
      if (name in header) throw invalidToken(`Tokens carrying their own key material ("${name}") are refused.`);
    }
    if (header.crit !== undefined) throw invalidToken('Unsupported critical header.');
    for (const name in header) {
      if (!ALLOWED_HEADERS.has(name)) throw invalidToken('The token header carries an unexpected parameter.');
    }
    const key: SigningKey | undefined = typeof header.kid === 'string' ? keyring.byKid.get(header.kid) : undefined;
    if (!key) throw invalidToken('The token was not signed by a key of this gateway.');
    if (key.alg !== header.alg) throw invalidToken('The token algorithm does not match its key.');
    return key.publicKey;
  };
}

/**
 * Tokens this isolate has already verified, per keyring, until they expire. A token string's
 * signature and claims never change, so checking them again on every request of a session is
 * wasted work; expiry is re-checked on every hit, and revocation is not cached at all (that is
 * the KV check in requireAuth). Bounded: the oldest entries go first.
 */
const VERIFIED_CACHE_SIZE = 2048;
const verified = new WeakMap<Keyring, Map<string, { claims: AccessClaims; issuer: string; audience: string }>>();

function cacheFor(keyring: Keyring) {
  let cache = verified.get(keyring);
  if (!cache) {
    cache = new Map();
    verified.set(keyring, cache);
  }
  return cache;
}

/** The `code` of a jose error (every jose error has one, `ERR_J…`), else undefined. */
function joseCode(e: unknown): string | undefined {
  const code = e instanceof Error && 'code' in e ? e.code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_J') ? code : undefined;
}

/** Checks signature, type, issuer, audience, lifetime and claim shapes. Throws `invalid_token`. */
export async function verifyAccessToken(ctx: TokenContext, token: string, now?: number): Promise<AccessClaims> {
  const cache = cacheFor(ctx.keyring);
  const hit = cache.get(token);
  if (hit && hit.issuer === ctx.issuer && hit.audience === ctx.audience) {
    const nowS = now ?? nowSeconds();
    if (hit.claims.exp + CLOCK_TOLERANCE_S > nowS) return hit.claims;
    cache.delete(token);
    throw new ExpiredTokenError();
  }
  const claims = await verifyAccessTokenUncached(ctx, token, now);
  if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(token, { claims, issuer: ctx.issuer, audience: ctx.audience });
  return claims;
}

/** The full check, without the per-isolate cache (the benchmark measures this). */
export async function verifyAccessTokenUncached(ctx: TokenContext, token: string, now?: number): Promise<AccessClaims> {
  if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw invalidToken('The access token is malformed.');
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keyResolver(ctx.keyring), {
      algorithms: ctx.keyring.algorithms,
      issuer: ctx.issuer,
      audience: ctx.audience,
      typ: ACCESS_TOKEN_TYPE,
      requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid'],
      clockTolerance: CLOCK_TOLERANCE_S,
      currentDate: now === undefined ? undefined : new Date(now * 1000),
    }));
  } catch (e) {
    // jose's error codes, not instanceof: the class a subpath import ('jose/errors') sees need not
    // be the one jose/jwt/verify throws when a bundler keeps two copies (Vite's test runner does).
    if (joseCode(e) === errors.JWTExpired.code) throw new ExpiredTokenError();
    if (joseCode(e) !== undefined) throw invalidToken('The access token is invalid.');
    throw e instanceof ApiError ? e : invalidToken('The access token is invalid.');
  }
  const nowS = now ?? nowSeconds();
  const parsed = v.safeParse(accessClaimsSchema, payload);
  if (!parsed.success || parsed.output.iat > nowS + CLOCK_TOLERANCE_S) throw invalidToken('The access token is invalid.');
  // The verified-token cache hands the same object to every request: frozen, so none can alter it.
  Object.freeze(parsed.output.roles);
  return Object.freeze(parsed.output);
}
