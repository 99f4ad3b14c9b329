/**
 * Access tokens: short-lived JWTs (`typ: at+jwt`) signed with the keyring's active key.
 * Verification pins the algorithm to our keys', resolves the key only by a `kid` we know,
 * and refuses tokens that carry key material of their own.
 */
import type { JWSHeaderParameters } from 'jose';
import * as base64url from 'jose/base64url';
import { SignJWT } from 'jose/jwt/sign';
import * as v from 'valibot';
import { ApiError, invalidToken } from '../http/errors';
import type { Keyring, SigningAlgorithm, SigningKey } from '../keys/keyring';
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
 * The claims an access token must carry besides `iss` and `aud` (checked by hand below, and
 * not part of the result). Built once per isolate; parsed once per verification (cache misses
 * only).
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
  /**
   * The identity provider's groups, as the session's provider vouches for them now (possibly
   * none). Absent: nobody vouches (a sign-in without provider groups, groups too old, a token of
   * an earlier version): not "in no group", which a rule denying a group must not take it for.
   */
  groups: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(256))), v.maxLength(256))),
  /**
   * The directory's groups (SCIM provisioning), as `scim:<name>`, read when the token was minted
   * (possibly none). Absent: SCIM is off, or a token of an earlier version. Apart from `groups`
   * so that each source's "nobody vouches" stays its own (proxy/policy.ts).
   */
  scim_groups: v.optional(v.pipe(v.array(v.pipe(v.string(), v.startsWith('scim:'), v.maxLength(256))), v.maxLength(256))),
  /** RFC 8176 authentication methods (RFC 9068 §2.2.1): what step-up checks. At most a few short names. */
  amr: v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), v.maxLength(16)),
  /** When the user last authenticated (OpenID Connect `auth_time`), Unix seconds; for `max_auth_age`. */
  auth_time: v.pipe(v.number(), v.integer(), v.minValue(0)),
});

export type AccessClaims = v.InferOutput<typeof accessClaimsSchema>;

export interface TokenContext {
  keyring: Keyring;
  issuer: string;
  audience: string;
  /**
   * On an app host (README "Hosts"): that host's origin, the audience of the access tokens
   * minted for its own cookie; accepted besides `audience` there and nowhere else.
   */
  hostAudience?: string;
}

export interface IssueInput {
  userId: string;
  sessionId: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  /** The vouched groups (even none); null or absent when nobody vouches for them: then no claim. */
  groups?: readonly string[] | null;
  /** The directory's groups (`scim:<name>`, even none); null or absent when SCIM is off: then no claim. */
  scimGroups?: readonly string[] | null;
  amr: readonly string[];
  authTime: number;
  ttlSeconds: number;
  /**
   * The latest `exp` the token may carry, Unix seconds: its session's end. A token never
   * outlives its session, so a session past its end has no token left for a revocation to miss.
   */
  notAfter?: number;
}

export async function issueAccessToken(ctx: TokenContext, input: IssueInput, now = nowSeconds()) {
  const key = ctx.keyring.active;
  const jti = randomId(16);
  const exp = Math.min(now + input.ttlSeconds, input.notAfter ?? Infinity);
  const token = await new SignJWT({
    sid: input.sessionId,
    email: input.email,
    email_verified: input.emailVerified,
    roles: input.roles,
    ...(input.groups === undefined || input.groups === null ? {} : { groups: [...input.groups] }),
    ...(input.scimGroups === undefined || input.scimGroups === null ? {} : { scim_groups: [...input.scimGroups] }),
    amr: [...input.amr],
    auth_time: input.authTime,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(ctx.issuer)
    .setAudience(ctx.audience)
    .setSubject(input.userId)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(key.privateKey);
  return { token, jti, expiresAt: exp, expiresIn: exp - now };
}

const FOREIGN_KEY_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'] as const;
/**
 * The only header parameters our tokens carry. Anything else (`zip`, `b64`, `cty`, private
 * names) changes how a token is read or is something we never sign: refused, not ignored.
 */
const ALLOWED_HEADERS: ReadonlySet<string> = new Set(['alg', 'kid', 'typ']);

/**
 * The key among ours that a token's protected header names, or a refusal: only `alg`, `kid`
 * and `typ` (no key material of its own, no `crit`), a `kid` we know, and that key's own
 * algorithm (so `none`, HS256 with a public key and the like never reach a verifier).
 */
export function resolveKey(keyring: Keyring, header: JWSHeaderParameters): SigningKey {
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
  return key;
}

/**
 * Tokens this isolate has already verified, per keyring, until they expire. A token string's
 * signature and claims never change, so checking them again on every request of a session is
 * wasted work; expiry is re-checked on every hit, and revocation is not cached at all (that is
 * the KV check in requireAuth). Bounded: the oldest entries go first.
 */
const VERIFIED_CACHE_SIZE = 2048;
const verified = new WeakMap<Keyring, Map<string, { claims: AccessClaims; issuer: string; audience: string }>>();

/** True if `aud` (the audience a token was verified with) is one the context accepts. */
const accepts = (ctx: TokenContext, aud: string) => aud === ctx.audience || (ctx.hostAudience !== undefined && aud === ctx.hostAudience);

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
  if (hit && hit.issuer === ctx.issuer && accepts(ctx, hit.audience)) {
    const nowS = now ?? nowSeconds();
    if (hit.claims.exp + CLOCK_TOLERANCE_S > nowS) return hit.claims;
    cache.delete(token);
    throw new ExpiredTokenError();
  }
  const claims = await verifyAccessTokenUncached(ctx, token, now);
  if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(token, { claims, issuer: ctx.issuer, audience: audienceOf.get(claims) ?? ctx.audience });
  return claims;
}

/** The audience each verified claims object was accepted for (the cache's key check). */
const audienceOf = new WeakMap<AccessClaims, string>();

/** `typ` as JOSE compares it: case-insensitive, `application/` optional (RFC 7515 4.1.9). */
const normaliseTyp = (typ: string) => typ.toLowerCase().replace(/^application\//, '');
const payloadDecoder = new TextDecoder();
/** Claims jose's jwtVerify was told to require (`requiredClaims`), checked before expiry as it did. */
const REQUIRED_CLAIMS = ['exp', 'iat', 'sub', 'jti', 'sid'] as const;

/** A parsed JSON value that is an object (the JWT claims set must be one), else null. */
function claimsObject(json: unknown): Record<string, unknown> | null {
  return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : null;
}

/** WebCrypto's parameters for each algorithm our keys use (JOSE's ES256 signature is r||s, as WebCrypto's). */
const VERIFY_PARAMS: Record<SigningAlgorithm, Parameters<SubtleCrypto['verify']>[0]> = {
  ES256: { name: 'ECDSA', hash: 'SHA-256' },
  EdDSA: { name: 'Ed25519' },
};
const signingInputEncoder = new TextEncoder();

/**
 * The protected header of a compact JWS (its shape already checked: three base64url parts;
 * `firstDot` ends the header), parsed once, and the key it names among ours.
 */
function headerAndKey(token: string, firstDot: number, keyring: Keyring): { header: JWSHeaderParameters; key: SigningKey } {
  let header: Record<string, unknown> | null;
  try {
    header = claimsObject(JSON.parse(payloadDecoder.decode(base64url.decode(token.slice(0, firstDot)))));
  } catch {
    header = null;
  }
  if (!header) throw invalidToken('The access token is invalid.');
  return { header, key: resolveKey(keyring, header) };
}

/**
 * The full check, without the per-isolate cache (the benchmark measures this): the JWS (below),
 * then the JWT claims as jose's jwtVerify checked them (`typ`; required claims; `iss`; `aud`;
 * `iat`, `exp` and `nbf` with CLOCK_TOLERANCE_S, expiry last), then our claim shapes
 * (accessClaimsSchema) and `iat` not in the future. Each step runs once on the one parsed
 * header and payload.
 */
export async function verifyAccessTokenUncached(ctx: TokenContext, token: string, now?: number): Promise<AccessClaims> {
  if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw invalidToken('The access token is malformed.');
  }
  // The JWS, verified by hand rather than with jose's compactVerify: for our one use (a key
  // chosen by `kid` among our own, its algorithm fixed by the key, no unprotected header, no
  // b64/crit) jose's general path costs a fifth of the verification again in awaits, copies
  // and re-validation (BENCHMARKS.md, "Verify step"). The security-relevant steps are jose's:
  // the header parsed once and checked by resolveKey (only alg/kid/typ, a known kid, the key's
  // own algorithm), the signature verified over the exact signing input with that algorithm
  // (JOSE's ES256 signature is r||s, as WebCrypto's), and nothing else read before it verifies.
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  const { header, key } = headerAndKey(token, firstDot, ctx.keyring);
  let valid = false;
  try {
    const signature = base64url.decode(token.slice(secondDot + 1));
    valid = await crypto.subtle.verify(VERIFY_PARAMS[key.alg], key.publicKey, signature, signingInputEncoder.encode(token.slice(0, secondDot)));
  } catch {
    valid = false;
  }
  if (!valid) throw invalidToken('The access token is invalid.');
  const payloadBytes = base64url.decode(token.slice(firstDot + 1, secondDot));
  if (typeof header.typ !== 'string' || normaliseTyp(header.typ) !== ACCESS_TOKEN_TYPE) throw invalidToken('The access token is invalid.');
  let payload: Record<string, unknown> | null;
  try {
    payload = claimsObject(JSON.parse(payloadDecoder.decode(payloadBytes)));
  } catch {
    payload = null;
  }
  if (!payload) throw invalidToken('The access token is invalid.');
  // In jose's order: required claims, iss, aud, iat's type, nbf, exp; then our claim shapes.
  for (const claim of REQUIRED_CLAIMS) if (!(claim in payload)) throw invalidToken('The access token is invalid.');
  // A token naming a client is a grant token (tokens/grant-token.ts), never a session's, even
  // where the two share an audience (an app host whose `/` is a protected resource).
  if ('client_id' in payload) throw invalidToken('The access token is invalid.');
  const { iss, aud, iat, exp, nbf } = payload;
  // An app host's audience is accepted only as the one a token of ours carries for it.
  const audOk = typeof aud === 'string' ? accepts(ctx, aud) : Array.isArray(aud) && aud.includes(ctx.audience);
  if (iss !== ctx.issuer || !audOk || typeof iat !== 'number' || typeof exp !== 'number') throw invalidToken('The access token is invalid.');
  const nowS = now ?? nowSeconds();
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowS + CLOCK_TOLERANCE_S)) throw invalidToken('The access token is invalid.');
  // Only a token that is ours and otherwise well-formed is "expired" (sign-out tells them apart).
  if (exp <= nowS - CLOCK_TOLERANCE_S) throw new ExpiredTokenError();
  const parsed = v.safeParse(accessClaimsSchema, payload);
  if (!parsed.success || parsed.output.iat > nowS + CLOCK_TOLERANCE_S || parsed.output.auth_time > parsed.output.iat + CLOCK_TOLERANCE_S) {
    throw invalidToken('The access token is invalid.');
  }
  // The verified-token cache hands the same object to every request: frozen, so none can alter it.
  Object.freeze(parsed.output.roles);
  if (parsed.output.groups) Object.freeze(parsed.output.groups);
  if (parsed.output.scim_groups) Object.freeze(parsed.output.scim_groups);
  Object.freeze(parsed.output.amr);
  audienceOf.set(parsed.output, typeof aud === 'string' ? aud : ctx.audience);
  return Object.freeze(parsed.output);
}
