/**
 * A client's life: registered (by an admin or dynamically) with a generated id, secret and
 * token epoch, and disabled by moving to a new epoch. Every token a client got names the epoch
 * it was issued under (`cep`, and a service token's session `svc:<id>:<epoch>`); disabling
 * revokes the old epoch's keys in KV first, so they are refused within the same bounds as an
 * ended session's, and only then stores the new epoch (a failed revocation leaves the client
 * as it was, and the retry finds the old epoch still there to revoke).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { disableClient, findClientById, insertClient, type OAuthClient } from '../storage/oauth-clients';
import { revokeSessionIds } from '../storage/revocation';
import { clientRevocationKey, serviceSessionId } from '../tokens/grant-token';
import { randomId, sha256 } from '../util/random';
import { nowSeconds } from '../util/time';
import type { ClientMetadata } from './client-metadata';

/**
 * Beyond ACCESS_TOKEN_TTL (the longest a grant token lives), how long a revocation is kept: a
 * token minted from the old epoch while the disable was between its KV write and its D1 write
 * still lives ACCESS_TOKEN_TTL from then.
 */
const DISABLE_RACE_MARGIN_SECONDS = 60;

const usesSecret = (m: Pick<ClientMetadata, 'authMethod'>) => m.authMethod === 'client_secret_basic' || m.authMethod === 'client_secret_post';

/** Stores a new client; its secret (32 random bytes, base64url) is returned this once, only its hash kept. */
export async function newClient(c: Context<AppEnv>, metadata: ClientMetadata, source: OAuthClient['source']): Promise<{ client: OAuthClient; secret: string | null }> {
  const secret = usesSecret(metadata) ? randomId(32) : null;
  const t = nowSeconds();
  const client: OAuthClient = {
    id: `cli_${randomId(16)}`,
    ...metadata,
    secretHash: secret === null ? null : await sha256(secret),
    previousSecretHash: null,
    previousSecretExpiresAt: null,
    source,
    tokenEpoch: randomId(12),
    createdAt: t,
    updatedAt: t,
    disabledAt: null,
  };
  if (!(await insertClient(c.env.DB, client))) throw new ApiError('conflict', 'A client with this id already exists. Try again.');
  return { client, secret };
}

/**
 * Disables `client` and revokes every token it got: its epoch's client key and service session
 * in KV (through the same list and isolate cache as a session's), then a new epoch and
 * `disabled_at` in D1. Done again for an already disabled client (an admin may disable twice
 * to be sure). Returns the client as stored.
 */
export async function revokeClientTokens(c: Context<AppEnv>, client: OAuthClient): Promise<OAuthClient> {
  const ttl = c.get('config').ACCESS_TOKEN_TTL + DISABLE_RACE_MARGIN_SECONDS;
  let current: OAuthClient | null = client;
  // A concurrent disable moves the epoch under us: revoke the one it left, at most a few times.
  for (let attempt = 0; attempt < 3 && current; attempt++) {
    await revokeSessionIds(c.env.REVOKED, [clientRevocationKey(current.id, current.tokenEpoch), serviceSessionId(current.id, current.tokenEpoch)], ttl);
    const t = nowSeconds();
    const epoch = randomId(12);
    if (await disableClient(c.env.DB, current.id, current.tokenEpoch, epoch, t)) {
      return { ...current, tokenEpoch: epoch, disabledAt: current.disabledAt ?? t, updatedAt: t };
    }
    current = await findClientById(c.env.DB, current.id);
  }
  if (!current) throw new ApiError('not_found', 'No such client.');
  throw new ApiError('conflict', 'The client was changed at the same time by another request. Try again.');
}
