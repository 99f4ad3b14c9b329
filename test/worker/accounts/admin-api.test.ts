/**
 * `/auth/admin/*`: only a user whose D1 record grants `admin` gets in; everything is
 * CSRF-checked and audited; disabling ends every session at once.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, bearer, call, countRows, GOOD_PASSWORD, makeEnv, registerUser, revokedKeys, setCookies, stateSnapshot, type TokenResponse } from '../support/helpers';
import { claimBefore } from '../support/claim-between';
import { sessionRows, sessionsObject } from '../support/user-sessions-store';

async function setStoredRoles(userId: string, roles: string[]) {
  await baseEnv.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(roles), userId).run();
}

async function makeAdmin(): Promise<TokenResponse> {
  const admin = await registerUser();
  await setStoredRoles(admin.user.id, ['admin']);
  return admin;
}

async function userRow(id: string) {
  return baseEnv.DB.prepare('SELECT roles, disabled_at FROM users WHERE id = ?').bind(id).first<{ roles: string; disabled_at: number | null }>();
}

async function auditRows(event: string, userId: string) {
  const { results } = await baseEnv.DB.prepare('SELECT detail FROM auth_events WHERE event = ? AND user_id = ?').bind(event, userId).all<{ detail: string }>();
  return results.map((r) => JSON.parse(r.detail) as Record<string, unknown>);
}

const asAdmin = (admin: TokenResponse, path: string, init: { method?: string; json?: unknown } = {}) =>
  call(`/auth/admin${path}`, { method: init.method ?? (init.json ? 'POST' : 'GET'), json: init.json, headers: bearer(admin.access_token) });

describe('admin endpoints: who gets in', () => {
  it('refuses a signed-in non-admin with 403 on every endpoint, changing nothing; no token at all is 401', async () => {
    const someone = await registerUser();
    const target = await registerUser();
    const before = await stateSnapshot();
    const attempts: [string, string, unknown?][] = [
      ['GET', '/users'],
      ['GET', `/users/${target.user.id}`],
      ['POST', `/users/${target.user.id}/disable`],
      ['POST', `/users/${target.user.id}/enable`],
      ['POST', `/users/${target.user.id}/logout-all`],
      ['PUT', `/users/${target.user.id}/roles/admin`],
      ['DELETE', `/users/${target.user.id}/roles/admin`],
    ];
    for (const [method, path, json] of attempts) {
      const r = await call(`/auth/admin${path}`, { method, json, headers: bearer(someone.access_token) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect((await r.json<{ error: string }>()).error).toBe('forbidden');
      const anonymous = await call(`/auth/admin${path}`, { method, json });
      expect(anonymous.status, `anonymous ${method} ${path}`).toBe(401);
    }
    expect(await stateSnapshot()).toEqual(before);
    expect(await userRow(target.user.id)).toEqual({ roles: '[]', disabled_at: null });
    expect(await countRows('auth_events', "event = 'admin_denied' AND user_id = ?", someone.user.id)).toBe(attempts.length);
  });

  it('trusts the role in D1, not the one in the token: a revoked admin is refused at once', async () => {
    const admin = await makeAdmin();
    const refreshed = await call('/auth/refresh', { json: { refresh_token: admin.refresh_token } });
    const { access_token } = await refreshed.json<TokenResponse>();
    expect((await call('/auth/me', { headers: bearer(access_token) })).status).toBe(200);
    expect((await call('/auth/admin/users', { headers: bearer(access_token) })).status).toBe(200);
    await setStoredRoles(admin.user.id, []);
    expect((await call('/auth/admin/users', { headers: bearer(access_token) })).status).toBe(403);
  });

  it('ADMIN_EMAILS grants admin to a verified email', async () => {
    const user = await registerUser();
    await baseEnv.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(user.user.id).run();
    const env = makeEnv({ ADMIN_EMAILS: user.user.email });
    expect((await call('/auth/admin/users', { env, headers: bearer(user.access_token) })).status).toBe(200);
  });

  it('refuses a cookie-authenticated cross-site request (CSRF) and changes nothing', async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    const login = await call('/auth/login', { json: { email: admin.user.email, password: GOOD_PASSWORD, session: 'cookie' } });
    const jar = setCookies(login);
    const cookies = { '__Host-gatehouse': jar.get('__Host-gatehouse')!.value };
    const liveSessions = () => countRows('sessions', 'user_id = ? AND revoked_at IS NULL', target.user.id);
    const live = await liveSessions();
    expect(live).toBeGreaterThan(0);
    for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }, { 'sec-fetch-site': 'same-site' }] as Record<string, string>[]) {
      for (const action of ['disable', 'logout-all']) {
        const r = await call(`/auth/admin/users/${target.user.id}/${action}`, { method: 'POST', cookies, headers });
        expect(r.status, `${action} ${JSON.stringify(headers)}`).toBe(403);
      }
    }
    expect((await userRow(target.user.id))?.disabled_at).toBeNull();
    expect(await liveSessions()).toBe(live);
    const same = await call(`/auth/admin/users/${target.user.id}/disable`, { method: 'POST', cookies, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(same.status).toBe(200);
  });
});

describe('admin endpoints: what they do', () => {
  it('lists and searches users, validating the query', async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    const all = await asAdmin(admin, '/users?limit=100');
    expect(all.status).toBe(200);
    const body = await all.json<{ users: { id: string; email: string; roles: string[]; disabled: boolean }[]; limit: number }>();
    expect(body.limit).toBe(100);
    expect(body.users.map((u) => u.id)).toEqual(expect.arrayContaining([admin.user.id, target.user.id]));
    expect(JSON.stringify(body)).not.toMatch(/password_hash|scrypt|\$/);

    const found = await (await asAdmin(admin, `/users?q=${encodeURIComponent(target.user.email.slice(0, 20))}`)).json<{ users: { id: string }[] }>();
    expect(found.users.map((u) => u.id)).toEqual([target.user.id]);
    const none = await (await asAdmin(admin, '/users?q=%25')).json<{ users: unknown[] }>();
    expect(none.users).toEqual([]); // a literal %, not a wildcard
    expect((await asAdmin(admin, '/users?limit=0')).status).toBe(400);
    expect((await asAdmin(admin, '/users?limit=abc')).status).toBe(400);
    expect((await asAdmin(admin, '/users?limit=1000')).status).toBe(400);
  });

  it("shows a user's sessions and recent events, never a refresh hash; unknown users are 404", async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    const r = await asAdmin(admin, `/users/${target.user.id}`);
    expect(r.status).toBe(200);
    const body = await r.json<{ user: { email: string }; sessions: { id: string }[]; events: { event: string }[]; identities: unknown[] }>();
    expect(body.user.email).toBe(target.user.email);
    expect(body.sessions).toHaveLength(1);
    expect(body.events.map((e) => e.event)).toContain('register');
    expect(body.identities).toEqual([]);
    expect(JSON.stringify(body)).not.toMatch(/refresh_hash|refreshHash/);
    expect((await asAdmin(admin, '/users/usr_nope')).status).toBe(404);
    expect((await asAdmin(admin, `/users/${'x'.repeat(300)}`)).status).toBe(404);
    expect(await auditRows('admin_user_viewed', target.user.id)).toEqual([{ admin: admin.user.id }]);
  });

  it('disabling ends a session a sign-in stored between the first ending of sessions and the disable itself', async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    const userId = target.user.id;
    const t = Math.floor(Date.now() / 1000);
    const sid = 'ses_storedwhiledisabling';
    const storeSession = () =>
      sessionsObject(userId).create(userId, {
        id: sid, user_id: userId, refresh_hash: `hash-${sid}`, family: 'f', created_at: t, expires_at: t + 3600, last_used_at: t,
        revoked_at: null, user_agent: null, ip: null, provider: 'password', amr: '["pwd"]', auth_time: t,
      });
    const e = makeEnv({ DB: claimBefore(baseEnv.DB, 'UPDATE users SET disabled_at', storeSession) });
    const r = await call(`/auth/admin/users/${userId}/disable`, { env: e, method: 'POST', headers: bearer(admin.access_token) });
    expect(r.status).toBe(200);
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', userId)).toBe(0);
    expect(await countRows('sessions', 'id = ?', sid)).toBe(1);
    expect(await revokedKeys()).toContain(`sid:${sid}`);
  });

  it('signs a user out everywhere: every session ends (object and KV), the account stays enabled, audited with the admin', async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    await call('/auth/login', { json: { email: target.user.email, password: GOOD_PASSWORD } });
    const r = await asAdmin(admin, `/users/${target.user.id}/logout-all`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, ended_sessions: 2 });
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', target.user.id)).toBe(0);
    const keys = await revokedKeys();
    for (const { id } of await sessionRows<{ id: string }>('SELECT id FROM sessions WHERE user_id = ?', [target.user.id])) expect(keys).toContain(`sid:${id}`);
    expect((await call('/auth/me', { headers: bearer(target.access_token) })).status).toBe(401);
    expect((await userRow(target.user.id))?.disabled_at).toBeNull();
    expect((await call('/auth/login', { json: { email: target.user.email, password: GOOD_PASSWORD } })).status).toBe(200);
    expect(await auditRows('admin_sessions_ended', target.user.id)).toEqual([{ admin: admin.user.id, ended_sessions: 2 }]);
    expect((await asAdmin(admin, '/users/usr_nope/logout-all', { method: 'POST' })).status).toBe(404);
  });

  it('disabling ends every session at once (its object and KV), blocks sign-in and refresh; enabling lets the user sign in again', async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    const second = await (await call('/auth/login', { json: { email: target.user.email, password: GOOD_PASSWORD } })).json<TokenResponse>();
    expect((await call('/auth/me', { headers: bearer(target.access_token) })).status).toBe(200);

    const r = await asAdmin(admin, `/users/${target.user.id}/disable`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ ok: true, ended_sessions: 2, user: { id: target.user.id, disabled: true } });
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', target.user.id)).toBe(0);
    const results = await sessionRows<{ id: string }>('SELECT id FROM sessions WHERE user_id = ?', [target.user.id]);
    const keys = await revokedKeys();
    for (const { id } of results) expect(keys).toContain(`sid:${id}`);
    for (const token of [target.access_token, second.access_token]) {
      expect((await call('/auth/me', { headers: bearer(token) })).status).toBe(401);
    }
    expect((await call('/auth/refresh', { json: { refresh_token: second.refresh_token } })).status).toBe(401);
    const login = await call('/auth/login', { json: { email: target.user.email, password: GOOD_PASSWORD } });
    expect(login.status).toBe(403);
    expect(await auditRows('admin_user_disabled', target.user.id)).toEqual([{ admin: admin.user.id, ended_sessions: 2 }]);

    const enable = await asAdmin(admin, `/users/${target.user.id}/enable`, { method: 'POST' });
    expect(enable.status).toBe(200);
    expect((await userRow(target.user.id))?.disabled_at).toBeNull();
    expect((await call('/auth/login', { json: { email: target.user.email, password: GOOD_PASSWORD } })).status).toBe(200);
    // Sessions ended by the disable stay ended.
    expect((await call('/auth/me', { headers: bearer(target.access_token) })).status).toBe(401);
  });

  it('grants and revokes roles; the new role reaches tokens at the next refresh', async () => {
    const admin = await makeAdmin();
    const target = await registerUser();
    const grant = await asAdmin(admin, `/users/${target.user.id}/roles/editor`, { method: 'PUT' });
    expect(grant.status).toBe(200);
    expect((await userRow(target.user.id))?.roles).toBe('["editor"]');
    const refreshed = await (await call('/auth/refresh', { json: { refresh_token: target.refresh_token } })).json<TokenResponse>();
    expect(refreshed.user.roles).toEqual(['editor']);

    expect((await asAdmin(admin, `/users/${target.user.id}/roles/editor`, { method: 'PUT' })).status).toBe(200); // idempotent
    expect((await userRow(target.user.id))?.roles).toBe('["editor"]');
    expect((await asAdmin(admin, `/users/${target.user.id}/roles/${encodeURIComponent('bad role!')}`, { method: 'PUT' })).status).toBe(400);
    expect((await asAdmin(admin, `/users/${target.user.id}/roles/viewer`, { method: 'DELETE' })).status).toBe(404);
    const revoke = await asAdmin(admin, `/users/${target.user.id}/roles/editor`, { method: 'DELETE' });
    expect(revoke.status).toBe(200);
    expect((await userRow(target.user.id))?.roles).toBe('[]');
    expect(await auditRows('admin_role_granted', target.user.id)).toEqual([{ admin: admin.user.id, role: 'editor' }, { admin: admin.user.id, role: 'editor' }]);
    expect(await auditRows('admin_role_revoked', target.user.id)).toEqual([{ admin: admin.user.id, role: 'editor' }]);
  });

  it('an admin cannot disable themself or revoke their own admin role (409), so the last admin is never locked out by accident', async () => {
    const admin = await makeAdmin();
    expect((await asAdmin(admin, `/users/${admin.user.id}/disable`, { method: 'POST' })).status).toBe(409);
    expect((await asAdmin(admin, `/users/${admin.user.id}/roles/admin`, { method: 'DELETE' })).status).toBe(409);
    expect(await userRow(admin.user.id)).toEqual({ roles: '["admin"]', disabled_at: null });
  });
});
