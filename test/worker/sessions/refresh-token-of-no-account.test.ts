/**
 * A refresh token's routing part is a user id anyone can write: one that names no account must
 * not reach (and so create) a Durable Object, by refresh or by sign-out, or a flood of made-up
 * ids would each leave an object with storage behind.
 */
import { describe, expect, it } from 'vitest';
import { randomId } from '../../../src/util/random';
import { call, makeEnv, registerUser } from '../support/helpers';
import { recordingSessions } from '../support/user-sessions-store';

describe('a refresh token naming no account', () => {
  it('is refused by refresh without touching any object', async () => {
    const calls: string[] = [];
    const e = makeEnv({ USER_SESSIONS: recordingSessions(calls) });
    const r = await call('/auth/refresh', { json: { refresh_token: `usr_${randomId(12)}.${randomId(32)}` }, env: e });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
    expect(calls).toEqual([]);
  });

  it('ends nothing at sign-out and touches no object', async () => {
    const calls: string[] = [];
    const e = makeEnv({ USER_SESSIONS: recordingSessions(calls) });
    const r = await call('/auth/logout', { method: 'POST', json: { refresh_token: `usr_${randomId(12)}.${randomId(32)}` }, headers: { 'sec-fetch-site': 'same-origin' }, env: e });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 0 });
    expect(calls).toEqual([]);
  });

  it('while a real account\'s token still refreshes and signs out through its object', async () => {
    const calls: string[] = [];
    const e = makeEnv({ USER_SESSIONS: recordingSessions(calls) });
    const t = await registerUser();
    const r = await call('/auth/refresh', { json: { refresh_token: t.refresh_token }, env: e });
    expect(r.status).toBe(200);
    const next = (await r.json()) as { refresh_token: string };
    const out = await call('/auth/logout', { method: 'POST', json: { refresh_token: next.refresh_token }, headers: { 'sec-fetch-site': 'same-origin' }, env: e });
    expect(await out.json()).toEqual({ ok: true, ended_sessions: 1 });
    expect(calls).toContain('rotate');
    expect(calls).toContain('end');
  });
});
