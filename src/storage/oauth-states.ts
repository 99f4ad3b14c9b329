/**
 * Single use of an OAuth `state`, enforced server-side in D1. Clearing the flow cookie is not
 * enough (a copied cookie can be replayed), and KV cannot do it: a get-then-put there is not
 * atomic and other locations see the write up to a minute late. An INSERT on D1's primary key
 * is one strongly consistent step, so exactly one callback per state can ever pass.
 */
import { sha256 } from '../util/random';
import { guard } from './errors';

/** Marks the state used. True the first time, false on any later attempt. */
export async function consumeState(db: D1Database, state: string, provider: string, expiresAt: number, now: number): Promise<boolean> {
  const hash = await sha256(state);
  const [, inserted] = await guard(() => db.batch([
    // Housekeeping in the same round trip: rows outlive their flow by nothing.
    db.prepare('DELETE FROM oauth_used_states WHERE expires_at < ?').bind(now),
    db.prepare('INSERT INTO oauth_used_states (state_hash, provider, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').bind(hash, provider, expiresAt),
  ]));
  return inserted!.meta.changes === 1;
}

/**
 * True for the first replay of an already used state, false for every later one: so a replayed
 * flow raises one alert, however often it is replayed. The mark is a second row in the same
 * table (`<hash>:replayed`, a key no real hash can take since base64url has no `:`), so it
 * expires with the flow and needs no schema change.
 */
export async function firstReplayOf(db: D1Database, state: string, provider: string, expiresAt: number): Promise<boolean> {
  const hash = await sha256(state);
  const r = await guard(() => db
    .prepare('INSERT INTO oauth_used_states (state_hash, provider, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
    .bind(`${hash}:replayed`, provider, expiresAt)
    .run());
  return r.meta.changes === 1;
}
