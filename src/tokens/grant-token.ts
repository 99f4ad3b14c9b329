/**
 * Access tokens Gatehouse issues as an authorization server (README "Apps (OpenID Connect)",
 * "Machines", "MCP servers"): RFC 9068 JWTs (`typ: at+jwt`) for a client, never for the
 * gateway itself. They differ from the session's own access tokens (tokens/access-token.ts) in
 * what they may be used for, which their `aud` says: a protected resource (RFC 8707), a
 * service audience the client is allowed, or the userinfo endpoint; never PUBLIC_URL, and an app
 * host's origin only as the identifier of a resource at that host's `/`. They carry `client_id`
 * and `scope`, which a session token never does: the session verifier refuses any token naming a
 * client (tokens/access-token.ts), so no grant token passes where a session token is expected,
 * even where the two share an audience.
 *
 * `sub` is the user, or for the client-credentials grant the client itself (`svc` true).
 * Revocation (auth/grant-authenticate.ts) keys on `sid` (the user's session, so every way a
 * session ends ends its clients' tokens; for a service `svc:<id>:<epoch>`), on `gid` (one
 * grant: RFC 7009 revocation, a replayed code, a withdrawn consent) and on
 * `cli:<client_id>:<cep>` (a disabled client).
 */
import type { JWTPayload } from 'jose';
import { jwtVerify } from 'jose/jwt/verify';
import { SignJWT } from 'jose/jwt/sign';
import * as v from 'valibot';
import { invalidToken } from '../http/errors';
import type { Keyring } from '../keys/keyring';
import { randomId } from '../util/random';
import { CLOCK_TOLERANCE_S, nowSeconds } from '../util/time';
import { ACCESS_TOKEN_TYPE, MAX_TOKEN_LENGTH, resolveKey } from './access-token';

const idClaim = v.pipe(v.string(), v.minLength(1), v.maxLength(512));

const grantClaimsSchema = v.object({
  iss: v.string(),
  aud: v.string(),
  sub: idClaim,
  sid: idClaim,
  jti: idClaim,
  client_id: idClaim,
  /** Space-separated scopes (RFC 9068 §2.2.3). */
  scope: v.pipe(v.string(), v.maxLength(2048)),
  iat: v.number(),
  exp: v.number(),
  /** The grant (a user's consent to this client on this session) it was issued under; none for a service. */
  gid: v.optional(idClaim),
  /** The client's token epoch when it was issued: disabling the client revokes `cli:<client_id>:<cep>`. */
  cep: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  /** A service's token (client credentials): `sub` is the client, no user. */
  svc: v.optional(v.literal(true)),
  /** For a user's token: when and how the user signed in. */
  auth_time: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  amr: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), v.maxLength(16))),
});

export type GrantClaims = v.InferOutput<typeof grantClaimsSchema>;

export interface GrantTokenInput {
  issuer: string;
  audience: string;
  subject: string;
  sessionId: string;
  clientId: string;
  /** The client's token epoch (`OAuthClient.tokenEpoch`). */
  clientEpoch: string;
  /** The grant id, for a user's token. */
  grantId?: string;
  scope: string;
  ttlSeconds: number;
  /** Latest `exp` (the session's or grant's end). */
  notAfter?: number;
  service?: boolean;
  authTime?: number;
  amr?: readonly string[];
}

/** Signs a grant token with the active key. */
export async function issueGrantToken(keyring: Keyring, input: GrantTokenInput, now = nowSeconds()) {
  const key = keyring.active;
  const jti = randomId(16);
  const exp = Math.min(now + input.ttlSeconds, input.notAfter ?? Infinity);
  const token = await new SignJWT({
    sid: input.sessionId,
    client_id: input.clientId,
    cep: input.clientEpoch,
    ...(input.grantId === undefined ? {} : { gid: input.grantId }),
    scope: input.scope,
    ...(input.service ? { svc: true } : {}),
    ...(input.authTime === undefined ? {} : { auth_time: input.authTime }),
    ...(input.amr === undefined ? {} : { amr: [...input.amr] }),
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(input.subject)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(key.privateKey);
  return { token, jti, expiresAt: exp, expiresIn: exp - now };
}

/**
 * Verifies a grant token for one of `audiences` (signature by our keys with the key's own
 * algorithm, `typ`, `iss`, `aud`, lifetime, claim shapes). Revocation is the caller's
 * (storage/revocation.ts, on `sid`). Throws `invalid_token`.
 */
export async function verifyGrantToken(keyring: Keyring, issuer: string, audiences: readonly string[], token: string): Promise<GrantClaims> {
  if (token.length > MAX_TOKEN_LENGTH) throw invalidToken('The access token is malformed.');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, (header) => resolveKey(keyring, header).publicKey, {
      issuer,
      audience: [...audiences],
      typ: ACCESS_TOKEN_TYPE,
      algorithms: keyring.algorithms,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid', 'client_id', 'cep'],
    }));
  } catch {
    throw invalidToken('The access token is invalid or expired.');
  }
  const parsed = v.safeParse(grantClaimsSchema, payload);
  if (!parsed.success || parsed.output.iat > nowSeconds() + CLOCK_TOLERANCE_S) throw invalidToken('The access token is invalid.');
  return parsed.output;
}

/** The revocation keys of a grant token: its session, its grant, its client's epoch. */
export function grantRevocationKeys(claims: Pick<GrantClaims, 'sid' | 'gid' | 'client_id' | 'cep'>): string[] {
  return [claims.sid, ...(claims.gid === undefined ? [] : [claims.gid]), clientRevocationKey(claims.client_id, claims.cep)];
}

/** The key that revokes every token a client got under one epoch. */
export const clientRevocationKey = (clientId: string, epoch: string) => `cli:${clientId}:${epoch}`;

/** The session id of a service's tokens: revoked when the client is disabled or its epoch changes. */
export const serviceSessionId = (clientId: string, epoch: string) => `svc:${clientId}:${epoch}`;
