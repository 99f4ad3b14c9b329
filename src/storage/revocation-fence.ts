/**
 * The optional revocation fence: one Durable Object per user (`idFromName(userId)`) holding the
 * user's revoked session ids until no token of theirs can verify any more. A Durable Object is
 * one place answering strongly consistently, so a revocation written here is seen by every
 * isolate on its next read, where KV (and each isolate's cache) may answer late. It is read only
 * by routes marked `revocation = "immediate"` and by refresh (see storage/revocation.ts).
 */
import { DurableObject } from 'cloudflare:workers';

// It reads no bindings: `object` says so without importing env.ts (storage stays below it).
export class RevocationFence extends DurableObject<object> {
  constructor(ctx: DurableObjectState, env: object) {
    super(ctx, env);
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS revoked (sid TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)');
  }

  /** Records the sessions as revoked until `untilMs`; expired rows go on every write (no alarm needed). */
  revoke(sids: string[], untilMs: number): void {
    const sql = this.ctx.storage.sql;
    sql.exec('DELETE FROM revoked WHERE until_ms <= ?', Date.now());
    for (const sid of sids) {
      sql.exec('INSERT INTO revoked (sid, until_ms) VALUES (?, ?) ON CONFLICT (sid) DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)', sid, untilMs);
    }
  }

  isRevoked(sid: string): boolean {
    return this.ctx.storage.sql.exec('SELECT 1 FROM revoked WHERE sid = ? AND until_ms > ?', sid, Date.now()).toArray().length > 0;
  }
}

/** The binding's type (`REVOCATION_FENCE` in wrangler.toml). */
export type RevocationFenceNamespace = DurableObjectNamespace<RevocationFence>;

/** Where a user's revocations are fenced: the binding and whose object. */
export interface FenceTarget {
  ns: RevocationFenceNamespace;
  userId: string;
}

export const fenceStub = (f: FenceTarget) => f.ns.get(f.ns.idFromName(f.userId));
