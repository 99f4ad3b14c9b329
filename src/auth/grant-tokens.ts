/**
 * What a client may do with the tokens it holds, besides using them: revoke them (RFC 7009) and
 * ask about them (RFC 7662). Both answer only about the caller's own tokens (and, for
 * introspection, tokens for an audience the caller is allowed); anything else is as if unknown,
 * so neither endpoint tells one client about another's tokens.
 */
import type { Context } from 'hono';
import { decodeJwt } from 'jose/jwt/decode';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import type { OAuthClient } from '../storage/oauth-clients';
import { revokeSessionIds } from '../storage/revocation';
import { endGrantByRefreshHash, endGrantIn } from '../storage/sessions';
import { verifyGrantToken, type GrantClaims } from '../tokens/grant-token';
import { sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { userFromReplica } from './directory-reads';
import { recordEvent } from './events';
import { authenticateGrantToken } from './grant-authenticate';

/** A grant's refresh token: `<user id>.<secret>`. */
const REFRESH_TOKEN = /^(usr_[A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/;

/** The audience a JWT names (unverified: only to know which audience to verify it for), or null. */
function claimedAudience(token: string): string | null {
  try {
    const { aud } = decodeJwt(token);
    return typeof aud === 'string' ? aud : null;
  } catch {
    return null;
  }
}

/** The claims of a grant token we signed (any audience), unexpired; null for anything else. Revocation is not checked. */
async function ourGrantToken(c: Context<AppEnv>, token: string): Promise<GrantClaims | null> {
  const audience = claimedAudience(token);
  if (audience === null) return null;
  try {
    return await verifyGrantToken(c.get('keyring'), c.get('config').PUBLIC_URL, [audience], token);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_token') return null;
    throw e;
  }
}

/**
 * RFC 7009: a refresh token of `client` ends its grant (in the user's object, then its access
 * tokens by `gid` in KV); an access token of `client` ends its grant the same way. Another
 * client's token, an unknown, expired or malformed one changes nothing: the endpoint answers
 * 200 either way (§2.2). `hint` only says which kind to try first.
 */
export async function revokeClientToken(c: Context<AppEnv>, client: OAuthClient, token: string, hint: string | undefined): Promise<void> {
  const asRefresh = async () => {
    const parts = REFRESH_TOKEN.exec(token);
    if (!parts) return false;
    const userId = parts[1]!;
    // A routing part anyone can write: one naming no account must not reach (create) an object.
    if ((await userFromReplica(c, userId)) === null) return false;
    const outcome = await endGrantByRefreshHash(sessionsOf(c, userId), await sha256(parts[2]!), client.id, now());
    if (outcome.kind !== 'ended') return outcome.kind === 'other_client';
    await revokeSessionIds(c.env.REVOKED, [outcome.grantId], c.get('config').ACCESS_TOKEN_TTL);
    await recordEvent(c, { event: 'oauth_token_revoked', outcome: 'success', userId, detail: { client_id: client.id, gid: outcome.grantId, sid: outcome.sessionId, kind: 'refresh_token' } });
    return true;
  };
  const asAccess = async () => {
    const claims = await ourGrantToken(c, token);
    if (!claims) return false;
    // Another client's token, or a service's (no grant: disabling the client or a new epoch ends those).
    if (claims.client_id !== client.id || claims.gid === undefined || claims.svc === true) return true;
    await endGrantIn(sessionsOf(c, claims.sub), claims.gid, client.id, now());
    await revokeSessionIds(c.env.REVOKED, [claims.gid], c.get('config').ACCESS_TOKEN_TTL);
    await recordEvent(c, { event: 'oauth_token_revoked', outcome: 'success', userId: claims.sub, detail: { client_id: client.id, gid: claims.gid, sid: claims.sid, kind: 'access_token' } });
    return true;
  };
  const order = hint === 'access_token' ? [asAccess, asRefresh] : [asRefresh, asAccess];
  for (const attempt of order) {
    if (await attempt()) return;
  }
}

/** RFC 7662 §2.2's answer. */
export type Introspection = { active: false } | {
  active: true;
  scope: string;
  client_id: string;
  sub: string;
  aud: string;
  iss: string;
  exp: number;
  iat: number;
  token_type: 'Bearer';
  sid: string;
};

/**
 * RFC 7662 for a confidential client: an access token we issued, unexpired and unrevoked
 * (every key, the user's object asked too), that the caller may see (its own, or one for an
 * audience the caller is allowed), is active; everything else, refresh tokens included, is
 * `{active:false}`.
 */
export async function introspectToken(c: Context<AppEnv>, client: OAuthClient, token: string): Promise<Introspection> {
  const inactive = { active: false } as const;
  const claims = await ourGrantToken(c, token);
  if (!claims) return inactive;
  if (claims.client_id !== client.id && !client.allowedAudiences.includes(claims.aud)) return inactive;
  let live: GrantClaims;
  try {
    live = await authenticateGrantToken(c, token, [claims.aud], true);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_token') return inactive;
    throw e;
  }
  return {
    active: true,
    scope: live.scope,
    client_id: live.client_id,
    sub: live.sub,
    aud: live.aud,
    iss: live.iss,
    exp: live.exp,
    iat: live.iat,
    token_type: 'Bearer',
    sid: live.sid,
  };
}
