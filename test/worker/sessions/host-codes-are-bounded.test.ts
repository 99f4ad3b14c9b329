/**
 * The codes single sign-on mints are bounded (README "Hosts"): `/auth/sso` counts against the
 * per-IP `refresh` burst limit like the exchange, since each call mints a code (a row in the
 * user's object and an audit row in D1); and the object's housekeeping removes a code a day
 * after its expiry, not only once its session has ended (a month later).
 */
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, countRows, PUBLIC_URL } from '../support/helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { sessionRow, sessionRows, sessionsObject } from '../support/user-sessions-store';
import { ENDED_SESSION_KEEP_S } from '../../../src/storage/user-sessions';

const APP = 'https://app.example.com';
const routes = [{ host: 'app.example.com', path: '/', origin: 'service:APP', auth: 'required' }];
const app = recordingOrigin(() => new Response('app page'));
const env = proxyEnv(routes, { APP: app });
const NAV = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'cross-site' };
const STATE = 'AAAAAAAAAAAAAAAAAAAAAA';
const sso = `${PUBLIC_URL}/auth/sso?return_to=${encodeURIComponent(`${APP}/page`)}&state=${STATE}`;

const subOf = (token: string) => (JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub: string }).sub;

describe('/auth/sso is rate limited', () => {
  it('counts against the per-IP refresh limit: over it, 429, and no code is stored or recorded', async () => {
    const { cookies } = await cookieSession(env);
    const userId = subOf(cookies['__Host-gatehouse']);
    const keys: string[] = [];
    const limited = proxyEnv(routes, { APP: app }, { RATE_LIMITER: { limit: async (o: { key: string }) => (keys.push(o.key), { success: false }) } });
    const r = await call(sso, { env: limited, cookies, headers: NAV });
    expect(r.status).toBe(429);
    expect(r.headers.get('location')).toBeNull();
    expect(keys).toEqual(['refresh:203.0.113.7']);
    expect(await sessionRows('SELECT hash FROM host_codes', [], userId)).toHaveLength(0);
    expect(await countRows('auth_events', "event = 'host_code_issued' AND user_id = ?", userId)).toBe(0);
  });
});

describe('host codes are cleaned up while their session lives on', () => {
  it('the object’s housekeeping is due a day after a code’s expiry, not at the session’s end', async () => {
    const { cookies } = await cookieSession(env);
    const userId = subOf(cookies['__Host-gatehouse']);
    const r = await call(sso, { env, cookies, headers: NAV });
    expect(r.status).toBe(303);
    const code = (await sessionRow<{ expires_at: number }>('SELECT expires_at FROM host_codes', [], userId))!;
    const session = (await sessionRow<{ expires_at: number }>('SELECT expires_at FROM sessions', [], userId))!;
    // The session lives on far longer than the code: without the code, nothing is due before then.
    expect(session.expires_at).toBeGreaterThan(code.expires_at + ENDED_SESSION_KEEP_S);
    const alarm = await runInDurableObject(sessionsObject(userId), (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual((code.expires_at + ENDED_SESSION_KEEP_S) * 1000);
  });
});
