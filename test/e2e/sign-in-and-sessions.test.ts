/**
 * The core identity walk over real HTTP against a real `wrangler dev`:
 * register -> me -> refresh -> logout -> me (401), in token mode and in cookie mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startGateway, type Gateway } from './harness';

let gw: Gateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('core flow over wrangler dev', () => {
  it('token mode: register, me, refresh, logout, me refused', async () => {
    const c = new Client(gw.url);
    const email = `e2e-${Date.now()}@example.com`;
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email, password: 'an e2e passphrase that is long' } });
    expect(reg.status).toBe(201);
    const tokens = (await reg.json()) as { access_token: string; refresh_token: string; token_type: string; expires_in: number };
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.expires_in).toBe(600);

    const me = await c.fetch('/auth/me', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(me.status).toBe(200);
    const meBody = (await me.json()) as { user: { email: string }; session: { id: string } };
    expect(meBody.user.email).toBe(email);

    const refreshed = await c.fetch('/auth/refresh', { method: 'POST', json: { refresh_token: tokens.refresh_token } });
    expect(refreshed.status).toBe(200);
    const next = (await refreshed.json()) as { access_token: string; refresh_token: string };
    expect(next.refresh_token).not.toBe(tokens.refresh_token);

    const out = await c.fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${next.access_token}` } });
    expect(out.status).toBe(200);

    const after = await c.fetch('/auth/me', { headers: { authorization: `Bearer ${next.access_token}` } });
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toContain('invalid_token');
    expect(((await after.json()) as { error: string }).error).toBe('invalid_token');

    const reuse = await c.fetch('/auth/refresh', { method: 'POST', json: { refresh_token: next.refresh_token } });
    expect(reuse.status).toBe(401);
  });

  it('cookie mode: tokens only in cookies, logout clears them', async () => {
    const c = new Client(gw.url);
    const email = `e2e-cookie-${Date.now()}@example.com`;
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email, password: 'an e2e passphrase that is long', session: 'cookie' } });
    expect(reg.status).toBe(201);
    const body = await reg.text();
    expect(body).not.toContain('access_token');
    expect(c.cookies.has('__Host-gatehouse')).toBe(true);
    expect(c.cookies.has('__Secure-gatehouse-refresh')).toBe(true);

    expect((await c.fetch('/auth/me')).status).toBe(200);
    const refreshed = await c.fetch('/auth/refresh', { method: 'POST', headers: { origin: gw.url } });
    expect(refreshed.status).toBe(200);
    expect((await c.fetch('/auth/me')).status).toBe(200);

    const stale = c.cookies.get('__Host-gatehouse')!;
    const out = await c.fetch('/auth/logout', { method: 'POST', headers: { origin: gw.url } });
    expect(out.status).toBe(200);
    expect(c.cookies.size).toBe(0);
    const after = await c.fetch('/auth/me', { headers: { cookie: `__Host-gatehouse=${stale}` } });
    expect(after.status).toBe(401);
  });
});
