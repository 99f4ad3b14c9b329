/**
 * Revoked access-token ids (`jti:`) and sessions (`sid:`) in KV, each with an expiry of the
 * longest time a token naming it could still be accepted (lifetime plus clock tolerance), and
 * never below KV's 60 s minimum.
 * One `get([keys])` checks both in one round trip.
 */
import { log } from '../observability/log';
import { CLOCK_TOLERANCE_S } from '../util/time';
import { guard, StorageUnavailableError } from './errors';

export const KV_MIN_TTL = 60;

const jtiKey = (jti: string) => `jti:${jti}`;
const sidKey = (sid: string) => `sid:${sid}`;

/**
 * True if the token id or its session is revoked. Any failure to read (even one that looks like
 * a bug of ours) throws {@link StorageUnavailableError}, a 503: fail closed.
 */
export async function isRevoked(kv: KVNamespace, jti: string, sid: string): Promise<boolean> {
  let values: Map<string, string | null>;
  try {
    values = await kv.get([jtiKey(jti), sidKey(sid)], 'text');
  } catch (e) {
    log.error('revocation_check_failed', { error: e instanceof Error ? e.message : String(e) });
    throw new StorageUnavailableError(e, 'The revocation list cannot be read right now. Try again shortly.');
  }
  for (const v of values.values()) if (v !== null) return true;
  return false;
}

/** A revoked token is still accepted by its `exp` until the clock tolerance has passed too. */
function ttl(seconds: number): number {
  return Math.max(KV_MIN_TTL, Math.ceil(seconds) + CLOCK_TOLERANCE_S);
}

export async function revokeTokenId(kv: KVNamespace, jti: string, remainingSeconds: number): Promise<void> {
  await guard(() => kv.put(jtiKey(jti), '1', { expirationTtl: ttl(remainingSeconds) }));
}

/** Revokes every access token of the sessions; `accessTtl` bounds how long any of them lives. */
export async function revokeSessionIds(kv: KVNamespace, sids: string[], accessTtl: number): Promise<void> {
  await Promise.all(sids.map((sid) => guard(() => kv.put(sidKey(sid), '1', { expirationTtl: ttl(accessTtl) }))));
}
