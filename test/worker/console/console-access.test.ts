/**
 * Who gets into the operators' console, over EVERY console route. The routes come from the
 * gateway's own route table (app-lazy.ts's app, as the catch-all reads it): every route under
 * `{AUTH_PREFIX}/admin` is either the JSON admin API's or the console's, and each console route
 * (a page or an action of any area, present or future) is driven here through every refusal: no
 * session, a non-admin, an admin without a passkey or second factor, a cross-site post; and an
 * admin with a second factor gets through.
 */
import { Hono } from 'hono';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { buildLazyApp } from '../../../src/app-lazy';
import { loadConfig } from '../../../src/config/load';
import type { AppEnv } from '../../../src/env';
import { adminRoutes } from '../../../src/routes/admin';
import { call, bearer, GOOD_PASSWORD, type TestEnv } from '../support/helpers';
import { totpCode, updateJar, type Jar } from '../support/second-factor-helpers';
import { seedClient } from '../support/oauth-clients';
import { seedScimToken } from '../support/scim-tokens';
import { sessionExec, sessionsObject } from '../support/user-sessions-store';
import { uniqueEmail } from '../support/mail';
import { userWithTotp } from '../support/second-factor-helpers';
import { decodeJwt } from 'jose';
import { adminWithSecondFactor, auditRows, browse, consoleEnv, NAV, pageHtml, plainSession, submit, userState } from './console-support';

interface Route {
  method: string;
  path: string;
}

/** Every route (method and path pattern) the gateway has under /auth/admin, but middleware. */
function adminAreaRoutes(e: TestEnv): Route[] {
  const loaded = loadConfig(e);
  if (!loaded.ok) throw loaded.error;
  const app = buildLazyApp(loaded.config, new Hono<AppEnv>());
  return app.routes.filter((r) => r.method !== 'ALL' && (r.path === '/auth/admin' || r.path.startsWith('/auth/admin/'))).map((r) => ({ method: r.method, path: r.path }));
}

const isConsoleRoute = (r: Route) => r.path === '/auth/admin' || r.path.startsWith('/auth/admin/console/');

/** The fields a console action's form carries besides `confirm` (by path pattern); none for the others. */
const FORM_FIELDS: Record<string, Record<string, string>> = {
  '/auth/admin/console/users/:id/roles/grant': { role_name: 'auditor' },
  '/auth/admin/console/users/:id/roles/revoke': { role_name: 'auditor' },
  '/auth/admin/console/apps/clients/new': { name: 'Access check', redirect_uris: 'https://app.example.org/callback', grant_authorization_code: 'on', scope_openid: 'on' },
  '/auth/admin/console/apps/clients/:clientId/rotate-secret': { overlap_seconds: '3600' },
  '/auth/admin/console/apps/scim-tokens/new': { name: 'Access check' },
  '/auth/admin/console/apps/scim-tokens/:tokenId/rotate': { overlap_seconds: '0' },
  '/auth/admin/console/sessions/end': { s0: 'usr_someone/ses_something' },
};

/** A concrete value of each path parameter: `:id` is the target user; the others name what the target's routes act on. */
const params: Record<string, string> = {};

let e: TestEnv;
let routes: Route[];
let admin: { id: string; email: string; jar: Jar };
let weakAdmin: { id: string; email: string; jar: Jar };
let someone: { id: string; email: string; jar: Jar };
let target: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  e = consoleEnv();
  routes = adminAreaRoutes(e);
  admin = await adminWithSecondFactor(e);
  weakAdmin = await plainSession(e, true);
  someone = await plainSession(e, false);
  target = await plainSession(e, false);
  // The target holds the role the revoke route is driven with.
  await e.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["auditor"]', target.id).run();
  // A client the target allowed, and a SCIM token, for the Apps and machines routes.
  const { client } = await seedClient();
  await sessionsObject(target.id).grantConsent(target.id, client.id, ['openid'], [], Math.floor(Date.now() / 1000));
  const token = await seedScimToken();
  Object.assign(params, { id: target.id, clientId: client.id, tokenId: token.id });
});

/** A concrete URL for a route pattern: each parameter from `params`, a wildcard an unknown page. */
const urlOf = (r: Route) => r.path.replace(/:(\w+)/g, (_, name: string) => params[name] ?? `unknown-${name}`).replace('*', 'no-such-page');

function send(r: Route, jar: Jar | undefined, browser: boolean, headers: Record<string, string> = {}) {
  const url = urlOf(r);
  const accept: Record<string, string> = browser ? {} : { accept: 'application/json' };
  if (r.method === 'GET') return browser ? browse(e, jar, url) : call(url, { env: e, cookies: jar, headers: { ...accept, ...headers } });
  const fields = FORM_FIELDS[r.path] ?? {};
  return browser ? submit(e, jar, url, fields, headers) : call(url, { env: e, cookies: jar, form: fields, headers: { ...accept, ...headers } });
}

describe('the console routes', () => {
  it('every route under /auth/admin is the JSON admin API or the console; the console has its home, pages and actions', () => {
    const api = new Set(adminRoutes.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path === '/' ? '/auth/admin' : `/auth/admin${r.path}`}`));
    const strays = routes.filter((r) => !isConsoleRoute(r) && !api.has(`${r.method} ${r.path}`));
    expect(strays).toEqual([]);
    const console = routes.filter(isConsoleRoute).map((r) => `${r.method} ${r.path}`);
    expect(console).toEqual(expect.arrayContaining(['GET /auth/admin', 'GET /auth/admin/console/users', 'GET /auth/admin/console/users/:id', 'POST /auth/admin/console/users/:id/disable']));
    // No console route is the API's, and no API path is under /console/.
    expect([...api].filter((k) => k.includes('/auth/admin/console'))).toEqual([]);
  });
});

describe('who gets into the console, on every console route', () => {
  const consoleRoutes = () => routes.filter(isConsoleRoute);

  it('no session: a browser is sent to sign in and back; any other client gets 401', async () => {
    for (const r of consoleRoutes()) {
      const page = await send(r, undefined, true);
      expect(page.status, `${r.method} ${r.path}`).toBe(302);
      const back = r.method === 'GET' ? urlOf(r) : '/auth/admin';
      expect(page.headers.get('location'), `${r.method} ${r.path}`).toBe(`/auth/login?return_to=${encodeURIComponent(back)}`);
      const api = await send(r, undefined, false);
      expect(api.status, `${r.method} ${r.path}`).toBe(401);
      expect((await api.json<{ error: string }>()).error).toBe('invalid_token');
    }
    // The area list's own root is a console path too (an unknown page, behind the guard).
    const bare = await browse(e, undefined, '/auth/admin/console');
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe(`/auth/login?return_to=${encodeURIComponent('/auth/admin/console')}`);
    expect((await browse(e, admin.jar, '/auth/admin/console')).status).toBe(404);
  });

  it('a signed-in user without the admin role gets a 403 page (JSON for a client), nothing changes, and the refusal is audited', async () => {
    const before = await userState(target.id);
    for (const r of consoleRoutes()) {
      const page = await send(r, someone.jar, true);
      expect(page.status, `${r.method} ${r.path}`).toBe(403);
      expect(await pageHtml(page)).toContain('This requires the &quot;admin&quot; role.');
      const api = await send(r, someone.jar, false);
      expect(api.status, `${r.method} ${r.path}`).toBe(403);
      expect((await api.json<{ error: string }>()).error).toBe('forbidden');
    }
    expect(await userState(target.id)).toEqual(before);
    expect((await auditRows('admin_denied', someone.id)).length).toBe(consoleRoutes().length * 2);
  });

  it('an admin signed in without a passkey or second factor is sent to step up (a client: 401 insufficient_user_authentication); nothing changes', async () => {
    const before = await userState(target.id);
    for (const r of consoleRoutes()) {
      const page = await send(r, weakAdmin.jar, true);
      expect(page.status, `${r.method} ${r.path}`).toBe(303);
      const back = r.method === 'GET' ? urlOf(r) : '/auth/admin';
      expect(page.headers.get('location')).toBe(`/auth/step-up?return_to=${encodeURIComponent(back)}`);
      const api = await send(r, weakAdmin.jar, false);
      expect(api.status, `${r.method} ${r.path}`).toBe(401);
      expect((await api.json<{ error: string }>()).error).toBe('insufficient_user_authentication');
    }
    expect(await userState(target.id)).toEqual(before);
    expect((await auditRows('admin_denied', weakAdmin.id)).every((d) => d.reason === 'no_second_factor')).toBe(true);
  });

  it('an admin without a second factor holding a bearer token is refused too (the console is not a way around it)', async () => {
    const token = await call('/auth/login', { env: e, json: { email: weakAdmin.email, password: GOOD_PASSWORD } });
    const { access_token } = await token.json<{ access_token: string }>();
    const r = await call('/auth/admin/console/users', { env: e, headers: bearer(access_token) });
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('insufficient_user_authentication');
  });

  it('a cross-site post (another Origin, or Sec-Fetch-Site cross-site or same-site) is refused and changes nothing, even with confirm=yes', async () => {
    const before = await userState(target.id);
    const posts = consoleRoutes().filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThan(0);
    for (const r of posts) {
      for (const headers of [{ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }] as Record<string, string>[]) {
        const url = urlOf(r);
        const page = await call(url, { env: e, cookies: admin.jar, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...headers }, form: { ...(FORM_FIELDS[r.path] ?? {}), confirm: 'yes' } });
        expect(page.status, `${r.method} ${r.path} ${JSON.stringify(headers)}`).toBe(403);
        expect(await page.text()).toContain('Cross-site request refused');
      }
    }
    expect(await userState(target.id)).toEqual(before);
  });

  it('an admin signed in with a second factor gets every page, and every action its confirmation step (nothing changes yet)', async () => {
    const before = await userState(target.id);
    for (const r of consoleRoutes()) {
      const page = await send(r, admin.jar, true);
      const expected = r.path.endsWith('*') ? 404 : 200;
      expect(page.status, `${r.method} ${r.path} ${page.status === expected ? '' : await page.clone().text()}`).toBe(expected);
      const html = await pageHtml(page);
      if (r.method === 'POST') expect(html, `${r.method} ${r.path}`).toContain('name="confirm" value="yes"');
    }
    expect(await userState(target.id)).toEqual(before);
  });
});

describe('the console trusts D1 and the session now, not the token', () => {
  it('an admin whose role was revoked a moment ago (their token still says admin) gets the 403 page, at once', async () => {
    const u = await adminWithSecondFactor(e);
    // A refresh: the token now carries the role too.
    const jar = updateJar({ ...u.jar }, await call('/auth/refresh', { env: e, cookies: u.jar, method: 'POST' }));
    expect(decodeJwt(jar['__Host-gatehouse']!).roles).toContain('admin');
    expect((await browse(e, jar, '/auth/admin')).status).toBe(200);
    await e.DB.prepare("UPDATE users SET roles = '[]' WHERE id = ?").bind(u.id).run();
    const before = await userState(target.id);
    expect((await browse(e, jar, '/auth/admin')).status).toBe(403);
    expect((await submit(e, jar, `/auth/admin/console/users/${target.id}/sign-out`, { confirm: 'yes' })).status).toBe(403);
    expect(await userState(target.id)).toEqual(before);
  });

  it('a disabled admin whose access token still verifies is sent to sign in, and acts on no one', async () => {
    const u = await adminWithSecondFactor(e);
    // Disabled in D1 only (no session ended, nothing revoked in KV): the token alone still verifies.
    await e.DB.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').bind(Math.floor(Date.now() / 1000), u.id).run();
    const before = await userState(target.id);
    const page = await browse(e, u.jar, '/auth/admin/console/users');
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toMatch(/^\/auth\/(login|refresh)\?return_to=/);
    expect((await submit(e, u.jar, `/auth/admin/console/users/${target.id}/sign-out`, { confirm: 'yes' })).status).toBe(302);
    expect(await userState(target.id)).toEqual(before);
  });
});

describe('stepping up into the console', () => {
  it('an admin with an authenticator app whose session lacks the second factor steps up with a code and comes back to the console', async () => {
    const u = await userWithTotp(e, uniqueEmail('console-step-up'));
    await e.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', u.userId).run();
    // The session as a sign-in before the app was set up left it: a password only.
    const sid = decodeJwt(u.jar['__Host-gatehouse']!).sid as string;
    await sessionExec('UPDATE sessions SET amr = ? WHERE id = ?', ['["pwd"]', sid], u.userId);
    const refreshed = await call('/auth/refresh', { env: e, cookies: u.jar, method: 'POST' });
    expect(refreshed.status).toBe(200);
    const jar = updateJar({ ...u.jar }, refreshed);
    const sent = await browse(e, jar, '/auth/admin/console/users');
    expect(sent.status).toBe(303);
    const stepUp = await browse(e, jar, sent.headers.get('location')!);
    expect(stepUp.status).toBe(200);
    expect(await stepUp.text()).toContain('name="code"');
    // The step-up's answer keeps the session and adds the second factor; back to the console page.
    const done = await submit(e, jar, '/auth/step-up', { code: totpCode(u.secret, 1), return_to: '/auth/admin/console/users' });
    expect(done.status, await done.clone().text()).toBe(303);
    expect(done.headers.get('location')).toBe('/auth/admin/console/users');
    updateJar(jar, done);
    expect((await browse(e, jar, '/auth/admin/console/users')).status).toBe(200);
  });

  it('a session signed in with a passkey (amr hwk, without mfa) is admitted; a password-only one is not', async () => {
    const u = await plainSession(e, true);
    const sid = decodeJwt(u.jar['__Host-gatehouse']!).sid as string;
    let jar = { ...u.jar };
    const withAmr = async (amr: string[]) => {
      await sessionExec('UPDATE sessions SET amr = ? WHERE id = ?', [JSON.stringify(amr), sid], u.id);
      const refreshed = await call('/auth/refresh', { env: e, cookies: jar, method: 'POST' });
      expect(refreshed.status, await refreshed.clone().text()).toBe(200);
      jar = updateJar({ ...jar }, refreshed);
      return jar;
    };
    expect((await browse(e, await withAmr(['hwk']), '/auth/admin')).status).toBe(200);
    expect((await browse(e, await withAmr(['swk']), '/auth/admin')).status).toBe(200);
    expect((await browse(e, await withAmr(['pwd']), '/auth/admin')).status).toBe(303);
  });

  it('an admin with no second factor at all is told to set one up (not asked for a password that would not let them in)', async () => {
    const r = await browse(e, weakAdmin.jar, `/auth/step-up?return_to=${encodeURIComponent('/auth/admin')}`);
    expect(r.status).toBe(403);
    const html = await r.text();
    expect(html).toContain('A second factor is needed');
    expect(html).not.toContain('name="password"');
  });
});

describe('when the console fails', () => {
  /** The real D1, except that statements naming `table` fail as in an outage. */
  const d1FailingOn = (table: string): D1Database =>
    new Proxy(e.DB, {
      get(target, prop) {
        if (prop === 'prepare') return (sql: string) => (sql.includes(table) ? (() => { throw new Error(`D1_ERROR: Network connection lost. ${sql}`); })() : target.prepare(sql));
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });

  it('a fault is a page naming nothing internal, and the log gets it as unhandled_error (as the JSON API\'s faults)', async () => {
    const lines: Record<string, unknown>[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void lines.push(JSON.parse(String(line)) as Record<string, unknown>));
    try {
      const r = await call(`/auth/admin/console/users/${target.id}`, { env: { ...e, DB: d1FailingOn('scim_group_members') }, cookies: admin.jar, headers: NAV });
      expect(r.status).toBeGreaterThanOrEqual(500);
      const html = await pageHtml(r);
      // Without the nonces, whose random letters may spell D1.
      expect(html.replace(/nonce="[^"]*"/g, '')).not.toMatch(/D1|SELECT|scim_group_members|Network/);
      expect(lines.filter((l) => l.event === 'unhandled_error' && String(l.error).includes('D1_ERROR'))).toHaveLength(1);
    } finally {
      spy.mockRestore();
    }
  });
});
