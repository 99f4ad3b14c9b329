/**
 * Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4): what a relying party receives
 * when a Gatehouse session it holds a grant on ends. Signed with the ID tokens' key (§2.4:
 * "the same keys ... as are used for ID Tokens"; the relying party validates it as an ID token,
 * ES256: tokens/id-token.ts `idTokenKey`), or the active key for a keyring without one (which
 * serves no ID tokens), and verified against the JWKS; typed `logout+jwt` so that no
 * other kind of token of ours (`at+jwt`, an ID token) can pose as one, and without `nonce`,
 * which the specification forbids so that an ID token cannot be replayed as a logout token.
 */
import { SignJWT } from 'jose/jwt/sign';
import type { Keyring } from '../keys/keyring';
import { idTokenKey } from './id-token';
import { randomId } from '../util/random';
import { nowSeconds } from '../util/time';

export const LOGOUT_TOKEN_TYPE = 'logout+jwt';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** A logout token is for immediate delivery: two minutes covers the send and clock skew. */
export const LOGOUT_TOKEN_TTL_S = 120;

export interface LogoutTokenInput {
  issuer: string;
  /** The client's id; for an origin's notice, the route's `logout_notify` target it is sent to. */
  audience: string;
  /** The user's id. */
  subject: string;
  /** The gateway session that ended: the `sid` the client's ID tokens carried. */
  sessionId: string;
}

export async function issueLogoutToken(keyring: Keyring, input: LogoutTokenInput): Promise<{ token: string; jti: string }> {
  const key = idTokenKey(keyring) ?? keyring.active;
  const now = nowSeconds();
  const jti = randomId(16);
  const token = await new SignJWT({ sid: input.sessionId, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: LOGOUT_TOKEN_TYPE })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(input.subject)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + LOGOUT_TOKEN_TTL_S)
    .sign(key.privateKey);
  return { token, jti };
}
