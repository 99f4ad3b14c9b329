/**
 * Revoked sessions: `sid:<session id>` in KV (the source of truth), each with an expiry of the
 * longest time a token of that session could still be accepted (access-token lifetime plus
 * clock tolerance), never below KV's 60 s minimum. Every revocation ends a whole session (sign-
 * out, logout-all, ending one session, an admin disable, an unverified account claimed), so one
 * key per session is all a verification reads: it stays hot in KV's edge cache across the
 * session's access-token rotations, where a per-token `jti:` key would be cold for every token.
 *
 * In front of KV sits a per-isolate cache (the one place revocation is answered; "immediate"
 * routes also ask the user's sessions object here):
 * - "not revoked" answers, per session, for `REVOCATION_CACHE_SECONDS` (0 = never cached);
 * - "revoked" answers, until no token of the session can verify any more. Every revocation this
 *   isolate writes is recorded here first, so this isolate refuses the session on its very next
 *   request, whatever KV's own caches say.
 * Both maps are bounded ({@link REVOCATION_CACHE_MAX_ENTRIES}); a read failure is never cached.
 */
import { log } from '../observability/log';
import { CLOCK_TOLERANCE_S } from '../util/time';
import { guard, StorageUnavailableError } from './errors';
import { isSessionEndedIn, type SessionStore } from './sessions';

export const KV_MIN_TTL = 60;

/**
 * KV's edge cache keeps a read's answer (a missing key too) this long: 30 s is the least KV
 * allows, so a revocation written elsewhere reaches this location's readers at most this late.
 */
export const KV_CACHE_TTL = 30;

/** Entries per map (passes and revocations): about 1-2 MB at most, far below an isolate's 128 MB. */
export const REVOCATION_CACHE_MAX_ENTRIES = 10_000;

const sidKey = (sid: string) => `sid:${sid}`;

/**
 * Session id -> until when (ms) the answer holds. A Map keeps insertion order and an entry is
 * re-inserted whenever it is renewed, so the first key is the least recently renewed: evicting
 * it is LRU in effect for passes (each renews every window) without reordering on every hit.
 */
class BoundedExpiringSet {
  private readonly until = new Map<string, number>();
  constructor(private readonly max: number) {}

  has(id: string, nowMs: number): boolean {
    const until = this.until.get(id);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.until.delete(id);
    return false;
  }

  add(id: string, untilMs: number): void {
    this.until.delete(id);
    this.until.set(id, untilMs);
    if (this.until.size > this.max) {
      const oldest = this.until.keys().next();
      if (!oldest.done) this.until.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.until.delete(id);
  }

  get size(): number {
    return this.until.size;
  }

  clear(): void {
    this.until.clear();
  }
}

const passes = new BoundedExpiringSet(REVOCATION_CACHE_MAX_ENTRIES);
const revoked = new BoundedExpiringSet(REVOCATION_CACHE_MAX_ENTRIES);

export interface RevocationCheck {
  /** How long a "not revoked" answer may be reused in this isolate (`REVOCATION_CACHE_SECONDS`). */
  cacheSeconds: number;
  /** The presented token's `exp` (Unix seconds): a "revoked" answer from KV is kept that long. */
  tokenExpiresAt: number;
  /**
   * A route marked `revocation = "immediate"`: also ask the user's sessions object, on every
   * request and never cached (a session ended anywhere is refused on the next request
   * everywhere). Any failure to ask it is a 503, never a pass.
   */
  fence?: SessionStore;
}

/**
 * True if the session is revoked. At most one KV read (one key); none while this isolate holds
 * an answer. Any failure to read (even one that looks like a bug of ours) throws
 * {@link StorageUnavailableError}, a 503: fail closed, and nothing is cached.
 */
export async function isSessionRevoked(kv: KVNamespace, sid: string, check: RevocationCheck): Promise<boolean> {
  const t = Date.now();
  if (revoked.has(sid, t)) return true;
  if (check.fence && (await isSessionEndedIn(check.fence, sid))) return true;
  if (passes.has(sid, t)) return false;
  let value: string | null;
  try {
    value = await kv.get(sidKey(sid), { type: 'text', cacheTtl: KV_CACHE_TTL });
  } catch (e) {
    log.error('revocation_check_failed', { error: e instanceof Error ? e.message : String(e) });
    throw new StorageUnavailableError(e, 'The revocation list cannot be read right now. Try again shortly.');
  }
  if (value !== null) {
    revoked.add(sid, (check.tokenExpiresAt + CLOCK_TOLERANCE_S) * 1000);
    return true;
  }
  // A revocation this isolate recorded while the read was in flight wins over its answer.
  if (check.cacheSeconds > 0 && !revoked.has(sid, Date.now())) passes.add(sid, t + check.cacheSeconds * 1000);
  return false;
}

/** A revoked token is still accepted by its `exp` until the clock tolerance has passed too. */
function ttl(seconds: number): number {
  return Math.max(KV_MIN_TTL, Math.ceil(seconds) + CLOCK_TOLERANCE_S);
}

/**
 * Revokes every access token of the sessions; `accessTtl` bounds how long any of them lives.
 * This isolate refuses them at once (recorded before the KV write, so even a failed write
 * leaves them refused here); other isolates see KV.
 */
export async function revokeSessionIds(kv: KVNamespace, sids: string[], accessTtl: number): Promise<void> {
  const until = Date.now() + ttl(accessTtl) * 1000;
  for (const sid of sids) {
    passes.delete(sid);
    revoked.add(sid, until);
  }
  await Promise.all(sids.map((sid) => guard(() => kv.put(sidKey(sid), '1', { expirationTtl: ttl(accessTtl) }))));
}

/** Entries held in this isolate, for tests and diagnostics. */
export function revocationCacheSize(): { passes: number; revoked: number } {
  return { passes: passes.size, revoked: revoked.size };
}

/** Forgets everything this isolate holds (tests only: it drops this isolate's own revocations). */
export function clearRevocationCache(): void {
  passes.clear();
  revoked.clear();
}
