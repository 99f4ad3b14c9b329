/**
 * A step-up never revives a session past its absolute end (`created_at + SESSION_MAX_AGE`, as
 * the gateway is configured now): a refresh refuses such a session, and a step-up must too,
 * rather than answer 200 with an access token that expired before it was issued (a negative
 * `expires_in`). It happens when an operator lowers SESSION_MAX_AGE to cut old sessions short.
 * `Date` is moved with fake timers, never by waiting.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bearer, call, GOOD_PASSWORD, makeEnv, type TokenResponse, uniqueEmail } from '../support/helpers';
import { sessionRow } from '../support/user-sessions-store';

const before = makeEnv({ ACCESS_TOKEN_TTL: '3600' });
const lowered = makeEnv({ ACCESS_TOKEN_TTL: '3600', SESSION_MAX_AGE: '300' });

afterEach(() => {
  vi.useRealTimers();
});

describe('a step-up of a session past its absolute end', () => {
  it('is refused (401 invalid_token): no token, and the session keeps its sign-in time', async () => {
    const r = await call('/auth/register', { json: { email: uniqueEmail('past-end'), password: GOOD_PASSWORD }, env: before });
    expect(r.status).toBe(201);
    const user = (await r.json()) as TokenResponse;
    const sid = decodeJwt(user.access_token).sid as string;
    const authTime = async () => (await sessionRow<{ auth_time: number }>('SELECT auth_time FROM sessions WHERE id = ?', [sid]))!.auth_time;
    const signedInAt = await authTime();

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 400 * 1000);
    // The refresh already refuses it under the lowered setting.
    expect((await call('/auth/refresh', { json: { refresh_token: user.refresh_token }, env: lowered })).status).toBe(401);
    const step = await call('/auth/step-up', { json: { password: GOOD_PASSWORD }, headers: bearer(user.access_token), env: lowered });
    expect(step.status, await step.clone().text()).toBe(401);
    expect(await step.json()).toMatchObject({ error: 'invalid_token' });
    expect(await authTime()).toBe(signedInAt);
  });
});
