/**
 * Single sign-on across hosts without a shared cookie (README "Hosts"): the gateway host keeps
 * the session; an app host gets a one-time code through the gateway's `/sso`, exchanges it on
 * its own `/sso/callback` for an access cookie of the same session bound to that host, and
 * signing out on any host ends the session on every host. The code works once, on its host,
 * before its expiry, for a live session; a replay is a security event.
 */
import { describe, expect, it } from 'vitest';
import { call, countRows, PUBLIC_URL, setCookies, bearer } from '../support/helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { sessionExec } from '../support/user-sessions-store';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { testKey } from '../support/helpers';
import { safeReturnTo } from '../../../src/http/return-to';
import { loadConfig } from '../../../src/config/load';

const APP = 'https://app.example.com';
/** Under another registrable domain than the gateway's. */
const TOOL = 'https://tool.example.org';
const app = recordingOrigin(() => new Response('app page'));
const tool = recordingOrigin(() => new Response('tool page'));
const gatewayOrigin = recordingOrigin(() => new Response('gateway page'));
const env = proxyEnv(
  [
    { path: '/', origin: 'service:GW', auth: 'required' },
    { host: 'app.example.com', path: '/', origin: 'service:APP', auth: 'required' },
    { host: '*.example.org', path: '/', origin: 'service:TOOL', auth: 'required' },
    { host: 'admin.example.com', path: '/', origin: 'service:APP', auth: 'required', require: ['mfa'] },
  ],
  { APP: app, TOOL: tool, GW: gatewayOrigin },
);

/** A browser's top-level navigation coming from another site (the usual way to each step). */
const NAV = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'cross-site' };
const JSON_ACCEPT = { accept: 'application/json' };

type Jar = Record<string, string>;

/** A well-formed state, for requests to /sso that are refused before it matters. */
const SOME_STATE = 'AAAAAAAAAAAAAAAAAAAAAA';

function ssoUrl(returnTo: string, state = SOME_STATE): string {
  return `${PUBLIC_URL}/auth/sso?return_to=${encodeURIComponent(returnTo)}&state=${state}`;
}

/** The app host sends a browser without its cookie to /sso, with a state it keeps in a cookie of its own. */
async function startOnHost(returnTo: string): Promise<{ sso: string; state: string }> {
  const r = await call(returnTo, { env, headers: NAV });
  expect(r.status, await r.clone().text()).toBe(302);
  const sso = r.headers.get('location')!;
  const state = setCookies(r).get('__Host-gatehouse-sso')!.value;
  expect(new URL(sso).searchParams.get('state')).toBe(state);
  return { sso, state };
}

/** A code for `returnTo` from a browser signed in at the gateway host: the callback URL and the browser's state on the app host. */
async function codeFor(gateway: Jar, returnTo: string): Promise<{ callback: URL; state: string }> {
  const { sso, state } = await startOnHost(returnTo);
  const r = await call(sso, { env, cookies: gateway, headers: NAV });
  expect(r.status, await r.clone().text()).toBe(303);
  const callback = new URL(r.headers.get('location')!);
  expect(callback.origin + callback.pathname).toBe(`${new URL(returnTo).origin}/auth/sso/callback`);
  expect(callback.searchParams.get('code')).toMatch(/^usr_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  return { callback, state };
}

/** Exchanges the code on `callback`'s host, by the browser holding `state` there: the response. */
function exchange({ callback, state }: { callback: URL | string; state?: string }, headers: Record<string, string> = NAV) {
  return call(callback.toString(), { env, headers, cookies: state === undefined ? undefined : { '__Host-gatehouse-sso': state } });
}

/** Signs an app host in from the gateway's session: its own cookie jar. */
async function signInOnHost(gateway: Jar, returnTo: string): Promise<Jar> {
  const r = await exchange(await codeFor(gateway, returnTo));
  expect(r.status, await r.clone().text()).toBe(303);
  const cookie = setCookies(r).get('__Host-gatehouse')!;
  return { '__Host-gatehouse': cookie.value };
}

const claimsOf = (token: string) => JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sid: string; aud: string; sub: string };

async function gatewaySession() {
  const { cookies } = await cookieSession(env);
  return cookies as Jar;
}

async function events(event: string, userId: string): Promise<number> {
  return countRows('auth_events', 'event = ? AND user_id = ?', event, userId);
}


/** An access token of the gateway session's own session for the app host APP, expired an hour ago. */
async function expiredAppHostToken(gateway: Jar) {
  const claims = claimsOf(gateway['__Host-gatehouse']!);
  const keyring = await keyringFromJwks({ keys: [testKey] });
  return issueAccessToken(
    { keyring, issuer: PUBLIC_URL, audience: APP },
    { userId: claims.sub, sessionId: claims.sid, email: 'x@example.com', emailVerified: false, roles: [], amr: ['pwd'], authTime: 1, ttlSeconds: 60 },
    Math.floor(Date.now() / 1000) - 3600,
  );
}

describe('an app host without a session of its own', () => {
  it('sends a browser navigation to the gateway’s /sso with the full URL, and an API call gets 401; the origin sees neither', async () => {
    app.seen.length = 0;
    const r = await call(`${APP}/wiki/page?x=1`, { env, headers: NAV });
    expect(r.status).toBe(302);
    const state = setCookies(r).get('__Host-gatehouse-sso')!;
    expect(state.value).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(state.attributes).toMatch(/Path=\/; HttpOnly; Secure; SameSite=Lax/);
    expect(r.headers.get('location')).toBe(`${PUBLIC_URL}/auth/sso?return_to=${APP}/wiki/page?x=1&state=${state.value}`);
    const api = await call(`${APP}/api`, { env, headers: JSON_ACCEPT });
    expect(api.status).toBe(401);
    expect(app.seen).toHaveLength(0);
  });
});

describe('one sign-in serves every host', () => {
  it('the gateway’s session comes back to the app host as a code, exchanged for this host’s own cookie of the same session', async () => {
    const gateway = await gatewaySession();
    const r = await exchange(await codeFor(gateway, `${APP}/wiki/page?x=1`));
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/wiki/page?x=1');
    // The code in this URL goes no further: not in a Referer, not in a cache.
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const cookie = setCookies(r).get('__Host-gatehouse')!;
    expect(cookie.attributes).toMatch(/Path=\//);
    expect(cookie.attributes).toMatch(/Secure/);
    expect(cookie.attributes).toMatch(/HttpOnly/);
    expect(cookie.attributes).toMatch(/SameSite=Lax/);
    // No refresh token on an app host: a stale cookie goes through /sso again.
    expect(setCookies(r).has('__Secure-gatehouse-refresh')).toBe(false);
    // Same session as the gateway's, bound to this host.
    const hostClaims = claimsOf(cookie.value);
    expect(hostClaims.sid).toBe(claimsOf(gateway['__Host-gatehouse']!).sid);
    expect(hostClaims.aud).toBe(APP);

    app.seen.length = 0;
    const page = await call(`${APP}/wiki/page?x=1`, { env, cookies: { '__Host-gatehouse': cookie.value, '__Host-gatehouse-sso': 'AAAAAAAAAAAAAAAAAAAAAA', theme: 'dark' }, headers: NAV });
    expect(page.status).toBe(200);
    expect(await page.text()).toBe('app page');
    expect(app.seen[0]!.headers['x-auth-session-id']).toBe(hostClaims.sid);
    // The gateway's cookies (this host's access cookie, the single sign-on state) never reach the origin.
    expect(app.seen[0]!.headers.cookie).toBe('theme=dark');
  });

  it('a browser keeps its one state across tabs, so two sign-ons at once do not undo each other', async () => {
    const gateway = await gatewaySession();
    const first = await codeFor(gateway, `${APP}/one`);
    // The second tab's navigation carries the state cookie the first one got.
    const r = await call(`${APP}/two`, { env, headers: NAV, cookies: { '__Host-gatehouse-sso': first.state } });
    expect(setCookies(r).get('__Host-gatehouse-sso')!.value).toBe(first.state);
    const second = await call(r.headers.get('location')!, { env, cookies: gateway, headers: NAV });
    const both = [first, { callback: new URL(second.headers.get('location')!), state: first.state }];
    for (const code of both) expect((await exchange(code)).status).toBe(303);
  });

  it('works for a host under another registrable domain (a wildcard route), with the same session', async () => {
    const gateway = await gatewaySession();
    const toolJar = await signInOnHost(gateway, `${TOOL}/board`);
    const appJar = await signInOnHost(gateway, `${APP}/`);
    expect(claimsOf(toolJar['__Host-gatehouse']!).sid).toBe(claimsOf(appJar['__Host-gatehouse']!).sid);
    const r = await call(`${TOOL}/board`, { env, cookies: toolJar, headers: NAV });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('tool page');
  });

  it('a browser not signed in at the gateway host signs in there first and comes back to /sso (return_to survives the sign-in page)', async () => {
    const { sso } = await startOnHost(`${APP}/wiki?a=1&b=2`);
    const r = await call(sso, { env, headers: NAV });
    expect(r.status).toBe(303);
    const login = new URL(r.headers.get('location')!, PUBLIC_URL);
    expect(login.pathname).toBe('/auth/login');
    const back = login.searchParams.get('return_to')!;
    expect(new URL(back, PUBLIC_URL).pathname).toBe('/auth/sso');
    expect(new URL(back, PUBLIC_URL).searchParams.get('return_to')).toBe(`${APP}/wiki?a=1&b=2`);
    const page = await call(login.pathname + login.search, { env, headers: NAV });
    expect(await page.text()).toContain(`name="return_to" value="${back.replaceAll('&', '&amp;')}"`);
  });

  it('the sign-in page lets its form’s redirects lead on to the app hosts (CSP form-action governs them all)', async () => {
    const page = await call('/auth/login', { env, headers: NAV });
    const formAction = /form-action ([^;]+)/.exec(page.headers.get('content-security-policy')!)![1]!.split(' ');
    expect(formAction).toEqual(expect.arrayContaining(["'self'", 'app.example.com:*', '*.example.org:*']));
  });

  it('a stale gateway cookie goes through the refresh navigation and back to /sso', async () => {
    const gateway = await gatewaySession();
    const keyring = await keyringFromJwks({ keys: [testKey] });
    const claims = claimsOf(gateway['__Host-gatehouse']!);
    const expired = await issueAccessToken(
      { keyring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
      { userId: claims.sub, sessionId: claims.sid, email: 'x@example.com', emailVerified: false, roles: [], amr: ['pwd'], authTime: 1, ttlSeconds: 60 },
      Math.floor(Date.now() / 1000) - 3600,
    );
    const { sso } = await startOnHost(`${APP}/`);
    const r = await call(sso, { env, cookies: { ...gateway, '__Host-gatehouse': expired.token }, headers: NAV });
    expect(r.status).toBe(303);
    const refresh = new URL(r.headers.get('location')!, PUBLIC_URL);
    expect(refresh.pathname).toBe('/auth/refresh');
    expect(new URL(refresh.searchParams.get('return_to')!, PUBLIC_URL).pathname).toBe('/auth/sso');
  });

  it('an expired app-host cookie sends a navigation through /sso again, not to a refresh it cannot do', async () => {
    const gateway = await gatewaySession();
    const expired = await expiredAppHostToken(gateway);
    const r = await call(`${APP}/page`, { env, cookies: { '__Host-gatehouse': expired.token }, headers: NAV });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe(`${PUBLIC_URL}/auth/sso?return_to=${APP}/page&state=${setCookies(r).get('__Host-gatehouse-sso')!.value}`);
  });
});

describe('step-up on an app host', () => {
  it('sends the browser to the gateway’s step-up, which comes back through /sso (its return_to survives the check)', async () => {
    const gateway = await gatewaySession();
    const adminJar = await signInOnHost(gateway, 'https://admin.example.com/');
    const r = await call('https://admin.example.com/panel?a=1&b=2', { env, cookies: adminJar, headers: NAV });
    expect(r.status).toBe(303);
    const stepUp = new URL(r.headers.get('location')!);
    expect(stepUp.origin + stepUp.pathname).toBe(`${PUBLIC_URL}/auth/step-up`);
    const back = stepUp.searchParams.get('return_to')!;
    const loaded = loadConfig(env);
    if (!loaded.ok) throw loaded.error;
    expect(safeReturnTo(back, loaded.config)).toBe(back);
    const sso = new URL(back, PUBLIC_URL);
    expect(sso.pathname).toBe('/auth/sso');
    expect(sso.searchParams.get('return_to')).toBe('https://admin.example.com/panel?a=1&b=2');
    expect(sso.searchParams.get('state')).toBe(setCookies(r).get('__Host-gatehouse-sso')!.value);
  });
});

describe('/sso gives codes only for the hosts the routes serve', () => {
  it.each([
    ['a host no route names', 'https://evil.example.net/'],
    ['the gateway host itself', `${PUBLIC_URL}/account`],
    ['plain http in production', 'http://app.example.com/'],
    ['a relative path', '/auth/account'],
    ['credentials in the URL', 'https://user:pw@app.example.com/'],
    ['a suffix lookalike', 'https://app.example.com.evil.net/'],
    ['no return_to', ''],
  ])('%s: refused (400), no code', async (_label, returnTo) => {
    const gateway = await gatewaySession();
    const r = await call(ssoUrl(returnTo), { env, cookies: gateway, headers: { ...NAV, accept: 'application/json' } });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    const page = await call(ssoUrl(returnTo), { env, cookies: gateway, headers: NAV });
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('Not a site this gateway serves');
  });

  it.each([['no state', ''], ['a malformed state', 'x'.repeat(21)]])('%s: refused (400), no code', async (_label, state) => {
    const gateway = await gatewaySession();
    const r = await call(`${PUBLIC_URL}/auth/sso?return_to=${encodeURIComponent(`${APP}/`)}&state=${state}`, { env, cookies: gateway, headers: { ...NAV, accept: 'application/json' } });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('only to a top-level navigation: an image or a script’s fetch gets no code', async () => {
    const gateway = await gatewaySession();
    const r = await call(ssoUrl(`${APP}/`), { env, cookies: gateway, headers: { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', 'sec-fetch-site': 'cross-site' } });
    expect(r.status).toBe(403);
    expect(r.headers.get('location')).toBeNull();
  });
});

describe('the code', () => {
  it('works once: a second exchange is refused and recorded as a security event', async () => {
    const gateway = await gatewaySession();
    const userId = claimsOf(gateway['__Host-gatehouse']!).sub;
    const code = await codeFor(gateway, `${APP}/`);
    expect((await exchange(code)).status).toBe(303);
    const again = await exchange(code, JSON_ACCEPT);
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: 'invalid_token' });
    expect(setCookies(again).has('__Host-gatehouse')).toBe(false);
    expect(await events('host_code_replayed', userId)).toBe(1);
    const row = await countRows('auth_events', "event = 'host_code_replayed' AND outcome = 'security' AND user_id = ?", userId);
    expect(row).toBe(1);
  });

  it('is useless on another host, and spent by the attempt', async () => {
    const gateway = await gatewaySession();
    const code = await codeFor(gateway, `${APP}/`);
    const elsewhere = new URL(code.callback);
    elsewhere.host = 'tool.example.org';
    const r = await exchange({ callback: elsewhere, state: code.state }, JSON_ACCEPT);
    expect(r.status).toBe(401);
    expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
    expect((await exchange(code, JSON_ACCEPT)).status).toBe(401);
  });

  it('is useless in another browser (login CSRF: someone else’s code; a code read from a log): refused, spent, a security event', async () => {
    const gateway = await gatewaySession();
    const userId = claimsOf(gateway['__Host-gatehouse']!).sub;
    // The attacker's own code, pushed to a victim's browser that holds another state, or none.
    const code = await codeFor(gateway, `${APP}/`);
    const { state: victims } = await startOnHost(`${APP}/`);
    for (const state of [victims, undefined]) {
      const r = await exchange({ callback: code.callback, state }, JSON_ACCEPT);
      expect(r.status).toBe(401);
      expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
    }
    expect(await countRows('auth_events', "event = 'host_code_refused' AND outcome = 'security' AND user_id = ? AND detail LIKE '%wrong_browser%'", userId)).toBe(1);
    // Spent: the right browser cannot use it after that either.
    expect((await exchange(code, JSON_ACCEPT)).status).toBe(401);
  });

  it('without the state cookie (it ran out during a long sign-in), refused and spent, a failure rather than an attack', async () => {
    const gateway = await gatewaySession();
    const userId = claimsOf(gateway['__Host-gatehouse']!).sub;
    const code = await codeFor(gateway, `${APP}/`);
    expect((await exchange({ callback: code.callback }, JSON_ACCEPT)).status).toBe(401);
    expect(await countRows('auth_events', "event = 'host_code_refused' AND outcome = 'failure' AND user_id = ? AND detail LIKE '%no_state%'", userId)).toBe(1);
    expect((await exchange(code, JSON_ACCEPT)).status).toBe(401);
  });

  it('is useless on the gateway host (no callback there)', async () => {
    const gateway = await gatewaySession();
    const code = await codeFor(gateway, `${APP}/`);
    const r = await call(`${PUBLIC_URL}/auth/sso/callback${code.callback.search}`, { env, headers: JSON_ACCEPT });
    expect(r.status).toBe(404);
    expect((await exchange(code)).status).toBe(303);
  });

  it('is refused after its expiry', async () => {
    const gateway = await gatewaySession();
    const userId = claimsOf(gateway['__Host-gatehouse']!).sub;
    const code = await codeFor(gateway, `${APP}/`);
    await sessionExec('UPDATE host_codes SET expires_at = ?', [Math.floor(Date.now() / 1000) - 1], userId);
    const r = await exchange(code, JSON_ACCEPT);
    expect(r.status).toBe(401);
    expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  });

  it('is refused once its session has ended', async () => {
    const gateway = await gatewaySession();
    const code = await codeFor(gateway, `${APP}/`);
    expect((await call('/auth/logout', { env, method: 'POST', cookies: gateway })).status).toBe(200);
    const r = await exchange(code, JSON_ACCEPT);
    expect(r.status).toBe(401);
    expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  });

  it('exchanges count against the per-IP refresh limit: over it, 429 and the code is not touched', async () => {
    const gateway = await gatewaySession();
    const code = await codeFor(gateway, `${APP}/`);
    const keys: string[] = [];
    const limited = proxyEnv(JSON.parse(env.ROUTES as string) as unknown[], { APP: app, TOOL: tool, GW: gatewayOrigin }, {
      RATE_LIMITER: { limit: async (o: { key: string }) => (keys.push(o.key), { success: false }) },
    });
    const r = await call(code.callback.toString(), { env: limited, headers: JSON_ACCEPT, cookies: { '__Host-gatehouse-sso': code.state } });
    expect(r.status).toBe(429);
    expect(keys).toEqual(['refresh:203.0.113.7']);
    expect((await exchange(code)).status).toBe(303);
  });

  it.each([['not a code'], ['usr_nobody.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'], ['']])('a made-up code %s: refused', async (code) => {
    const r = await exchange({ callback: `${APP}/auth/sso/callback?code=${encodeURIComponent(code)}`, state: SOME_STATE }, JSON_ACCEPT);
    expect(r.status).toBe(401);
  });
});

describe('an app host’s token is bound to its host', () => {
  it('is refused on another app host, on the gateway’s routes and on the gateway’s account endpoints', async () => {
    const gateway = await gatewaySession();
    const appJar = await signInOnHost(gateway, `${APP}/`);
    const token = appJar['__Host-gatehouse']!;
    tool.seen.length = 0;
    gatewayOrigin.seen.length = 0;
    expect((await call(`${TOOL}/x`, { env, cookies: appJar, headers: JSON_ACCEPT })).status).toBe(401);
    expect((await call(`${TOOL}/x`, { env, headers: { ...bearer(token), ...JSON_ACCEPT } })).status).toBe(401);
    expect((await call(`${PUBLIC_URL}/x`, { env, cookies: appJar, headers: JSON_ACCEPT })).status).toBe(401);
    expect((await call('/auth/me', { env, headers: bearer(token) })).status).toBe(401);
    expect((await call('/auth/me', { env, cookies: appJar })).status).toBe(401);
    expect((await call('/auth/verify', { env, cookies: appJar, headers: { 'x-forwarded-host': 'app.example.com', 'x-forwarded-uri': '/' } })).status).toBe(401);
    expect(tool.seen).toHaveLength(0);
    expect(gatewayOrigin.seen).toHaveLength(0);
    // On its own host it works.
    expect((await call(`${APP}/x`, { env, cookies: appJar, headers: JSON_ACCEPT })).status).toBe(200);
  });
});

describe('cross-site checks on an app host', () => {
  it('a cookie-authenticated write from the app host’s own pages passes; from another site, or another app host, it is refused', async () => {
    const gateway = await gatewaySession();
    const appJar = await signInOnHost(gateway, `${APP}/`);
    const cookie = `__Host-gatehouse=${appJar['__Host-gatehouse']}`;
    app.seen.length = 0;
    const own = await call(`${APP}/save`, { env, method: 'POST', body: 'x', headers: { cookie, origin: APP } });
    expect(own.status).toBe(200);
    for (const origin of ['https://evil.example.net', TOOL]) {
      const r = await call(`${APP}/save`, { env, method: 'POST', body: 'x', headers: { cookie, origin } });
      expect(r.status, origin).toBe(403);
    }
    expect(app.seen).toHaveLength(1);
  });
});

describe('signing out on any host ends the session on every host', () => {
  it('an app host’s sign-out ends the gateway’s session and every other host’s', async () => {
    const gateway = await gatewaySession();
    const appJar = await signInOnHost(gateway, `${APP}/`);
    const toolJar = await signInOnHost(gateway, `${TOOL}/`);
    const r = await call(`${APP}/auth/logout`, { env, method: 'POST', cookies: appJar, headers: { origin: APP, accept: 'text/html' } });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`${PUBLIC_URL}/auth/login?done=signed_out`);
    const cleared = setCookies(r).get('__Host-gatehouse')!;
    expect(cleared.value === '' || /max-age=0/i.test(cleared.attributes)).toBe(true);
    expect((await call('/auth/me', { env, cookies: gateway })).status).toBe(401);
    expect((await call(`${TOOL}/x`, { env, cookies: toolJar, headers: JSON_ACCEPT })).status).toBe(401);
    expect((await call(`${APP}/x`, { env, cookies: appJar, headers: JSON_ACCEPT })).status).toBe(401);
    // The gateway's page says so.
    expect(await (await call('/auth/login?done=signed_out', { env, headers: NAV })).text()).toContain('You have been signed out.');
  });

  it('an app host’s sign-out also ends the session when its cookie has expired (the page was open a while)', async () => {
    const gateway = await gatewaySession();
    const expired = await expiredAppHostToken(gateway);
    const r = await call(`${APP}/auth/logout`, { env, method: 'POST', cookies: { '__Host-gatehouse': expired.token }, headers: { origin: APP } });
    expect(r.status).toBe(303);
    expect((await call('/auth/me', { env, cookies: gateway })).status).toBe(401);
  });

  it('is refused from another site, or from the gateway host’s pages, and ends nothing', async () => {
    const gateway = await gatewaySession();
    const appJar = await signInOnHost(gateway, `${APP}/`);
    const cookie = `__Host-gatehouse=${appJar['__Host-gatehouse']}`;
    // The Cookie header set by hand: the test helper would add an Origin of the gateway's own.
    const attempts: Record<string, string>[] = [{ origin: 'https://evil.example.net' }, { origin: PUBLIC_URL }, { 'sec-fetch-site': 'same-site' }, {}];
    for (const headers of attempts) {
      const r = await call(`${APP}/auth/logout`, { env, method: 'POST', headers: { ...headers, cookie } });
      expect(r.status, JSON.stringify(headers)).toBe(403);
    }
    expect((await call('/auth/me', { env, cookies: gateway })).status).toBe(200);
  });

  it('the gateway’s sign-out ends the app hosts’ cookies too: a navigation goes back through /sso, an API call gets 401', async () => {
    const gateway = await gatewaySession();
    const appJar = await signInOnHost(gateway, `${APP}/`);
    expect((await call(`${APP}/x`, { env, cookies: appJar, headers: JSON_ACCEPT })).status).toBe(200);
    expect((await call('/auth/logout', { env, method: 'POST', cookies: gateway })).status).toBe(200);
    expect((await call(`${APP}/x`, { env, cookies: appJar, headers: JSON_ACCEPT })).status).toBe(401);
    const nav = await call(`${APP}/x`, { env, cookies: appJar, headers: NAV });
    expect(nav.status).toBe(302);
    expect(new URL(nav.headers.get('location')!).pathname).toBe('/auth/sso');
    expect(new URL(nav.headers.get('location')!).searchParams.get('return_to')).toBe(`${APP}/x`);
  });
});
