/**
 * Security events: logged at warn with user and IP, stored in auth_events, POSTed to
 * ALERT_WEBHOOK_URL through waitUntil without delaying the response.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../../src/index';
import { baseEnv, bearer, call, makeEnv, PUBLIC_URL, registerUser } from '../support/helpers';
import { sessionExec } from '../support/user-sessions-store';

const WEBHOOK = 'https://alerts.example.net/hook';
const env = makeEnv({ ALERT_WEBHOOK_URL: WEBHOOK });
const IP = '192.0.2.44';

interface Posted {
  url: string;
  body: Record<string, unknown>;
}

/** Replaces global fetch for webhook calls only; everything else would be a test bug. */
function captureWebhook(respond: () => Promise<Response> = async () => new Response('ok')) {
  const posted: Posted[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url !== WEBHOOK) throw new Error(`unexpected fetch to ${url}`);
    posted.push({ url, body: JSON.parse(String(init?.body)) });
    return respond();
  });
  return { posted, spy };
}

async function securityRows(event: string, userId: string) {
  const { results } = await baseEnv.DB.prepare("SELECT * FROM auth_events WHERE event = ? AND user_id = ? AND outcome = 'security'")
    .bind(event, userId)
    .all<{ ip: string; detail: string }>();
  return results;
}

function warnLines(spy: { mock: { calls: unknown[][] } }, event: string) {
  return spy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === event);
}

afterEach(() => vi.restoreAllMocks());

describe('security alerts', () => {
  it('refresh token reuse: warn log, auth_events row, webhook POST without any token', async () => {
    const user = await registerUser(undefined, undefined, env);
    const first = await call('/auth/refresh', { env, json: { refresh_token: user.refresh_token }, headers: { 'cf-connecting-ip': IP } });
    expect(first.status).toBe(200);
    // Past the grace for two tabs refreshing at once (REFRESH_REUSE_GRACE_S).
    await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 60 WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?)', [user.user.id]);
    const hook = captureWebhook();
    const warn = vi.spyOn(console, 'warn');
    const replay = await call('/auth/refresh', { env, json: { refresh_token: user.refresh_token }, headers: { 'cf-connecting-ip': IP } });
    expect(replay.status).toBe(401);

    const [line] = warnLines(warn, 'refresh_token_reuse');
    expect(line).toMatchObject({ level: 'warn', user_id: user.user.id, ip: IP });
    const rows = await securityRows('refresh_token_reuse', user.user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.ip).toBe(IP);
    expect(hook.posted).toHaveLength(1);
    expect(hook.posted[0]!.body).toMatchObject({ source: 'gatehouse', gateway: PUBLIC_URL, event: 'refresh_token_reuse', user_id: user.user.id, ip: IP });
    const text = JSON.stringify(hook.posted[0]!.body);
    expect(text).not.toContain(user.refresh_token);
    expect(text).not.toContain(user.access_token);
  });

  it('a revoked access token presented again: warn log, auth_events row, webhook POST', async () => {
    const user = await registerUser(undefined, undefined, env);
    expect((await call('/auth/logout', { env, method: 'POST', headers: bearer(user.access_token) })).status).toBe(200);
    const hook = captureWebhook();
    const warn = vi.spyOn(console, 'warn');
    const r = await call('/auth/me', { env, headers: { ...bearer(user.access_token), 'cf-connecting-ip': IP } });
    expect(r.status).toBe(401);
    expect(warnLines(warn, 'revoked_token_presented')[0]).toMatchObject({ user_id: user.user.id, ip: IP });
    expect(await securityRows('revoked_token_presented', user.user.id)).toHaveLength(1);
    expect(hook.posted.map((p) => p.body.event)).toEqual(['revoked_token_presented']);
    expect(JSON.stringify(hook.posted[0]!.body)).not.toContain(user.access_token);
  });

  it('a burst of failed sign-ins for one account raises one alert per window', async () => {
    const user = await registerUser(undefined, undefined, env);
    const hook = captureWebhook();
    const t = Math.floor(Date.now() / 1000);
    // Eight failures long enough ago that the back-off is over; two more make the burst (10).
    await baseEnv.DB.prepare('INSERT INTO login_failures (email, count, window_start, last_failure_at) VALUES (?, 8, ?, ?)')
      .bind(user.user.email, t - 600, t - 600)
      .run();
    const wrong = () => call('/auth/login', { env, json: { email: user.user.email, password: 'not my password!' }, headers: { 'cf-connecting-ip': IP } });
    expect((await wrong()).status).toBe(401); // 9
    await baseEnv.DB.prepare('UPDATE login_failures SET last_failure_at = ? WHERE email = ?').bind(t - 600, user.user.email).run();
    expect((await wrong()).status).toBe(401); // 10: the burst
    await baseEnv.DB.prepare('UPDATE login_failures SET last_failure_at = ? WHERE email = ?').bind(t - 600, user.user.email).run();
    expect((await wrong()).status).toBe(401); // 11: same window, no second alert
    const rows = await securityRows('login_failure_burst', user.user.id);
    expect(rows).toHaveLength(1);
    expect(JSON.parse(rows[0]!.detail)).toMatchObject({ failures: 10 });
    expect(hook.posted.map((p) => p.body.event)).toEqual(['login_failure_burst']);
    expect(JSON.stringify(hook.posted)).not.toContain('not my password!');
  });

  it('the webhook never delays the response: the answer is ready while the POST is still pending', async () => {
    const user = await registerUser(undefined, undefined, env);
    await call('/auth/logout', { env, method: 'POST', headers: bearer(user.access_token) });
    let release!: () => void;
    const hook = captureWebhook(() => new Promise<Response>((resolve) => (release = () => resolve(new Response('late')))));
    const ctx = createExecutionContext();
    const request = new Request(`${PUBLIC_URL}/auth/me`, { headers: { ...bearer(user.access_token), 'cf-connecting-ip': IP } });
    const response = await worker.fetch(request, env as never, ctx);
    expect(response.status).toBe(401);
    expect(hook.posted).toHaveLength(1); // sent, not yet answered
    release();
    await waitOnExecutionContext(ctx);
  });

  it('a failing webhook changes nothing for the client and is logged as an error', async () => {
    const user = await registerUser(undefined, undefined, env);
    await call('/auth/logout', { env, method: 'POST', headers: bearer(user.access_token) });
    captureWebhook(async () => {
      throw new TypeError('connection refused');
    });
    const error = vi.spyOn(console, 'error');
    const r = await call('/auth/me', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_token');
    const lines = error.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === 'alert_webhook_failed');
    expect(lines).toEqual([expect.objectContaining({ event: 'alert_webhook_failed', alert: 'revoked_token_presented', error: 'connection refused' })]);
  });

  it('without ALERT_WEBHOOK_URL nothing is posted, the event is still stored', async () => {
    const user = await registerUser();
    await call('/auth/logout', { method: 'POST', headers: bearer(user.access_token) });
    const spy = vi.spyOn(globalThis, 'fetch');
    expect((await call('/auth/me', { headers: bearer(user.access_token) })).status).toBe(401);
    expect(spy).not.toHaveBeenCalled();
    expect(await securityRows('revoked_token_presented', user.user.id)).toHaveLength(1);
  });
});
