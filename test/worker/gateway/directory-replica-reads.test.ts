/**
 * Which copy of the directory (D1) each read uses. Views and a refresh's user read go through a
 * D1 session (`withSession`) that a read replica near the user may serve; after a browser's
 * change it carries the primary's bookmark, and its next reads start from that bookmark, so they
 * see the change. Security decisions (sign-in, a change's account check) read the primary, and
 * a replica's answer that would refuse is confirmed there. Runs on the real local D1, through a
 * recording stand-in for the binding.
 */
import { describe, expect, it } from 'vitest';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { signIn as providerSignIn } from '../support/oauth-helpers';
import { baseEnv, bearer, call, GOOD_PASSWORD, makeEnv, registerUser, setCookies, uniqueEmail, type TestEnv } from '../support/helpers';
import { recordingDirectory } from '../support/recording-directory';
import { sessionRows } from '../support/user-sessions-store';

const NAV = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' };
const USER_BY_ID = 'SELECT * FROM users WHERE id = ?';
const BOOKMARK_COOKIE = '__Secure-gatehouse-d1';

function recorded(lagging?: (sql: string) => boolean): { env: TestEnv; directory: ReturnType<typeof recordingDirectory> } {
  const directory = recordingDirectory(baseEnv.DB, lagging);
  return { env: makeEnv({ DB: directory.db }), directory };
}

/** Signs in with a form post as a browser does; returns the response and the cookie jar. */
async function browserSignIn(email: string, env?: TestEnv) {
  const r = await call('/auth/login', { env, form: { email, password: GOOD_PASSWORD }, headers: NAV });
  expect(r.status).toBe(303);
  const jar = setCookies(r);
  return { r, jar, cookies: { '__Host-gatehouse': jar.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': jar.get('__Secure-gatehouse-refresh')!.value } };
}

describe('views read the directory through a replica session', () => {
  it('a refresh reads its user from any replica, and adds nothing on the primary for a bookmark', async () => {
    const user = await registerUser();
    const { env, directory } = recorded();
    const r = await call('/auth/refresh', { env, json: { refresh_token: user.refresh_token } });
    expect(r.status).toBe(200);
    expect(directory.statements.filter((s) => s.sql === USER_BY_ID)).toEqual([{ via: 'first-unconstrained', sql: USER_BY_ID }]);
    expect(directory.primarySql()).not.toContain('SELECT 1');
    expect(setCookies(r).has(BOOKMARK_COOKIE)).toBe(false);
  });

  it('/auth/me, the account page and the admin views read from a replica', async () => {
    const user = await registerUser();
    const { env, directory } = recorded();
    expect((await call('/auth/me', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/auth/account', { env, headers: bearer(user.access_token) })).status).toBe(200);
    const replica = directory.replicaSql();
    expect(replica.filter((sql) => sql === USER_BY_ID)).toHaveLength(2);
    for (const table of ['identities', 'totp_factors', 'recovery_codes']) expect(replica.some((sql) => sql.includes(`FROM ${table}`))).toBe(true);
    expect(directory.primarySql().filter((sql) => sql === USER_BY_ID)).toEqual([]);

    await baseEnv.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(user.user.id).run();
    const admin = recorded();
    expect((await call('/auth/admin/users', { env: admin.env, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call(`/auth/admin/users/${user.user.id}`, { env: admin.env, headers: bearer(user.access_token) })).status).toBe(200);
    const adminReplica = admin.directory.replicaSql();
    expect(adminReplica.some((sql) => sql.includes('FROM users WHERE email LIKE'))).toBe(true);
    expect(adminReplica.some((sql) => sql.includes('FROM auth_events'))).toBe(true);
    expect(adminReplica).toContain(USER_BY_ID);
  });
});

describe('a browser reads back its own change: the bookmark', () => {
  it('sign-in sets the bookmark cookie (HttpOnly, Secure, Lax, the auth prefix, minutes), and the next page reads from it', async () => {
    const { email } = (await registerUser()).user;
    const { env, directory } = recorded();
    const { jar, cookies } = await browserSignIn(email, env);
    const bookmark = jar.get(BOOKMARK_COOKIE);
    expect(bookmark?.value).toMatch(/^[0-9a-f-]+$/i);
    expect(bookmark!.attributes).toMatch(/Max-Age=300/);
    for (const attribute of ['Path=/auth', 'HttpOnly', 'Secure', 'SameSite=Lax']) expect(bookmark!.attributes).toContain(attribute);
    // The bookmark is the primary's: read there after the writes.
    expect(directory.statements.at(-1)).toEqual({ via: 'first-primary', sql: 'SELECT 1' });

    const page = await call('/auth/account', { env, cookies: { ...cookies, [BOOKMARK_COOKIE]: bookmark!.value }, headers: NAV });
    expect(page.status).toBe(200);
    const read = directory.statements.filter((s) => s.sql === USER_BY_ID);
    expect(read.at(-1)).toEqual({ via: bookmark!.value, sql: USER_BY_ID });
  });

  it('a change made with a form post sets a new bookmark; a failed one sets none', async () => {
    const { email } = (await registerUser()).user;
    const { cookies } = await browserSignIn(email);
    const { env } = recorded();
    const refused = await call('/auth/account/password', { env, form: { current_password: 'wrong password here', new_password: 'another fine passphrase' }, cookies, headers: NAV });
    expect(setCookies(refused).has(BOOKMARK_COOKIE)).toBe(false);
    const changed = await call('/auth/account/password', { env, form: { current_password: GOOD_PASSWORD, new_password: 'another fine passphrase' }, cookies, headers: NAV });
    expect(changed.status).toBe(303);
    expect(setCookies(changed).get(BOOKMARK_COOKIE)?.value).toMatch(/^[0-9a-f-]+$/i);
  });

  it('a provider sign-in (a GET callback) sets the bookmark too', async () => {
    installFakeNetwork();
    const idp = await FakeOidcProvider.create();
    idp.user = { sub: `d1-${Date.now()}`, email: uniqueEmail('d1-oidc'), email_verified: true, name: 'Replica' };
    const r = await providerSignIn('oidc', idp, makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret }));
    expect(r.status).toBe(303);
    expect(setCookies(r).has('__Host-gatehouse')).toBe(true);
    expect(setCookies(r).get(BOOKMARK_COOKIE)?.value).toMatch(/^[0-9a-f-]+$/i);
  });

  it('no bookmark for a token-mode client, nor for what changes only sessions (refresh, sign-out)', async () => {
    const registered = await call('/auth/register', { json: { email: uniqueEmail(), password: GOOD_PASSWORD } });
    expect(registered.status).toBe(201);
    expect(setCookies(registered).has(BOOKMARK_COOKIE)).toBe(false);
    const { email } = ((await registered.json()) as { user: { email: string } }).user;
    const first = await browserSignIn(email);
    const second = await browserSignIn(email);
    const refreshed = await call('/auth/refresh', { cookies: second.cookies, method: 'POST' });
    expect(refreshed.status).toBe(200);
    const ended = await call('/auth/logout', { cookies: first.cookies, method: 'POST' });
    expect(ended.status).toBe(200);
    for (const r of [refreshed, ended]) expect(setCookies(r).has(BOOKMARK_COOKIE)).toBe(false);
  });

  it('a bookmark cookie that is not one is ignored: any replica, no error', async () => {
    const user = await registerUser();
    const { env, directory } = recorded();
    for (const junk of ['not a bookmark', 'first-primary', '"00-00"', 'x'.repeat(300)]) {
      const r = await call('/auth/me', { env, headers: { ...bearer(user.access_token), cookie: `${BOOKMARK_COOKIE}=${encodeURIComponent(junk)}` } });
      expect(r.status).toBe(200);
    }
    expect(new Set(directory.statements.filter((s) => s.sql === USER_BY_ID).map((s) => s.via))).toEqual(new Set(['first-unconstrained']));
  });
});

describe('security decisions read the primary', () => {
  it('sign-in reads only the primary (account, back-off counters, the re-check before the session is stored)', async () => {
    const { email } = (await registerUser()).user;
    const { env, directory } = recorded();
    await browserSignIn(email, env);
    expect(directory.replicaSql()).toEqual([]);
    expect(directory.primarySql().some((sql) => sql.includes('EXISTS (SELECT 1 FROM users WHERE id = ? AND email = ?'))).toBe(true);
    expect(directory.primarySql().some((sql) => sql.includes('login_failures'))).toBe(true);
  });

  it('a change reads the account it changes on the primary', async () => {
    const { email } = (await registerUser()).user;
    const { cookies } = await browserSignIn(email);
    const { env, directory } = recorded();
    const r = await call('/auth/account/password', { env, form: { current_password: GOOD_PASSWORD, new_password: 'another fine passphrase' }, cookies, headers: NAV });
    expect(r.status).toBe(303);
    expect(directory.replicaSql()).toEqual([]);
    expect(directory.primarySql()).toContain(USER_BY_ID);
  });

  it('an admin\'s change reads its target and the admin role on the primary', async () => {
    const admin = await registerUser();
    await baseEnv.DB.prepare(`UPDATE users SET roles = '["admin"]' WHERE id = ?`).bind(admin.user.id).run();
    const target = await registerUser();
    const { env, directory } = recorded();
    const r = await call(`/auth/admin/users/${target.user.id}/disable`, { env, method: 'POST', headers: bearer(admin.access_token) });
    expect(r.status).toBe(200);
    expect(directory.replicaSql()).toEqual([]);
    expect(directory.primarySql().filter((sql) => sql === USER_BY_ID)).toHaveLength(2);
  });

  it('a replica that has not seen the account yet ends nothing: the refusal is confirmed on the primary', async () => {
    const user = await registerUser(uniqueEmail('lag'));
    const { env, directory } = recorded((sql) => sql === USER_BY_ID);
    const r = await call('/auth/refresh', { env, json: { refresh_token: user.refresh_token } });
    expect(r.status).toBe(200);
    expect(directory.statements.filter((s) => s.sql === USER_BY_ID).map((s) => s.via)).toEqual(['first-unconstrained', 'primary']);
    const live = await sessionRows<{ id: string }>('SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL', [user.user.id], user.user.id);
    expect(live).toHaveLength(1);
    const me = await call('/auth/me', { env, headers: bearer(((await r.json()) as { access_token: string }).access_token) });
    expect(me.status).toBe(200);
  });
});
