/**
 * What an origin receives: exactly which headers, with spoofed identity, hop-by-hop headers
 * and the gateway's cookies and bearer token removed; the assertion's claims; bodies,
 * redirects, WebSockets and origin failures.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../../src/index';
import { bearer, call, PUBLIC_URL, registerUser } from '../support/helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';

afterEach(() => vi.restoreAllMocks());

const app = recordingOrigin();
const maybe = recordingOrigin();
const open = recordingOrigin();
const env = proxyEnv(
  [
    { path: '/app', origin: 'service:APP', auth: 'required', audience: 'urn:app' },
    { path: '/maybe', origin: 'service:MAYBE', auth: 'optional' },
    { path: '/open', origin: 'service:OPEN', auth: 'public' },
    { path: '/remote', origin: 'https://origin.internal.example:8443/base', auth: 'required' },
    { path: '/slow', origin: 'https://slow.internal.example', auth: 'public', timeout_seconds: 1 },
  ],
  { APP: app, MAYBE: maybe, OPEN: open },
);

const SPOOFED = {
  'X-Auth-User-Id': 'evil',
  'x_auth_email': 'ceo@example.com',
  'X-AUTH-ROLES': 'admin',
  'X-Auth-Assertion': 'forged',
  'X-Auth-Anything-Else': '1',
  'X-Forwarded-User': 'root',
  'X_Forwarded_Email': 'root@example.com',
  'X-Forwarded-Groups': 'admins',
  'X-Forwarded-Preferred-Username': 'root',
  'Remote-User': 'root',
  'remote_user': 'root',
  'X-Forwarded-For': '10.0.0.1',
  'X-Forwarded-Host': 'evil.example',
  'X-Forwarded-Proto': 'http',
  'Forwarded': 'for=10.0.0.1',
  'X-Real-IP': '10.0.0.1',
  'Connection': 'keep-alive, X-Hop',
  'X-Hop': 'drop me',
  'Keep-Alive': 'timeout=5',
  'Proxy-Authorization': 'Basic abc',
  'TE': 'trailers',
  'X-Custom': 'kept',
  'Accept': 'application/json',
};

async function assertionClaims(token: string, audience: string) {
  const jwks = (await (await call('/.well-known/jwks.json', { env })).json()) as Parameters<typeof createLocalJWKSet>[0];
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience });
  return { payload, protectedHeader };
}

describe('headers the origin sees', () => {
  it('a signed-in request: spoofed identity, hop-by-hop, our cookies and bearer removed; identity set', async () => {
    app.seen.length = 0;
    const user = await registerUser(undefined, undefined, env);
    const headers = new Headers({ ...SPOOFED, ...bearer(user.access_token) });
    headers.append('X-Auth-User-Id', 'second copy');
    headers.set('cookie', '__Host-gatehouse=stolen; theme=dark; __Secure-gatehouse-refresh=r; other=1');
    const r = await call('/app/page?x=1', { env, headers: Object.fromEntries(headers) });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok');
    expect(app.seen).toHaveLength(1);
    const seen = app.seen[0]!;
    expect(seen.url).toBe('https://gate.example.com/app/page?x=1');
    expect(Object.keys(seen.headers).sort()).toEqual(
      [
        'accept',
        'cf-connecting-ip',
        'cookie',
        'x-auth-amr',
        'x-auth-assertion',
        'x-auth-auth-time',
        'x-auth-email',
        'x-auth-groups',
        'x-auth-roles',
        'x-auth-session-id',
        'x-auth-user-id',
        'x-custom',
        'x-forwarded-for',
        'x-forwarded-host',
        'x-forwarded-proto',
      ].sort(),
    );
    expect(seen.headers['cookie']).toBe('theme=dark; other=1');
    expect(seen.headers['x-auth-user-id']).toBe(user.user.id);
    expect(seen.headers['x-auth-email']).toBe(user.user.email);
    expect(seen.headers['x-auth-roles']).toBe(user.user.roles.join(','));
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe('gate.example.com');
    expect(seen.headers['x-custom']).toBe('kept');

    const { payload, protectedHeader } = await assertionClaims(seen.headers['x-auth-assertion']!, 'urn:app');
    expect(Object.keys(payload).sort()).toEqual(['amr', 'aud', 'auth_time', 'email', 'email_verified', 'exp', 'groups', 'iat', 'iss', 'roles', 'sid', 'sub']);
    expect(payload).toMatchObject({ iss: PUBLIC_URL, aud: 'urn:app', sub: user.user.id, email: user.user.email, email_verified: false, roles: user.user.roles });
    expect(payload.sid).toBe(seen.headers['x-auth-session-id']);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    expect(payload.exp! - payload.iat!).toBeGreaterThan(0);
    expect(protectedHeader.kid).toBeTruthy();
  });

  it('a cookie-authenticated request keeps other cookies and drops both gateway cookies', async () => {
    app.seen.length = 0;
    const r0 = await call('/auth/register', { env, json: { email: `c-${Date.now()}@example.com`, password: 'correct horse battery staple', session: 'cookie' } });
    const access = r0.headers.getSetCookie().find((l) => l.startsWith('__Host-gatehouse='))!.split(';')[0]!;
    const r = await call('/app/', { env, headers: { cookie: `a=1; ${access}; b=2` } });
    expect(r.status).toBe(200);
    expect(app.seen[0]!.headers['cookie']).toBe('a=1; b=2');
    expect(app.seen[0]!.headers['x-auth-user-id']).toBeTruthy();
  });

  it('optional route, anonymous: no identity headers at all, spoofed ones removed', async () => {
    maybe.seen.length = 0;
    const r = await call('/maybe/x', { env, headers: SPOOFED });
    expect(r.status).toBe(200);
    const names = Object.keys(maybe.seen[0]!.headers);
    expect(names.filter((n) => /^(x-auth|x-forwarded-(user|email|groups|preferred)|remote)/.test(n.replace(/_/g, '-')))).toEqual([]);
    expect(maybe.seen[0]!.headers['x-forwarded-for']).toBe('203.0.113.7');
  });

  it('optional route, signed in: identity attached; a bad bearer token is refused before the origin', async () => {
    maybe.seen.length = 0;
    const user = await registerUser(undefined, undefined, env);
    expect((await call('/maybe/x', { env, headers: bearer(user.access_token) })).status).toBe(200);
    expect(maybe.seen[0]!.headers['x-auth-user-id']).toBe(user.user.id);
    const bad = await call('/maybe/x', { env, headers: bearer(`${user.access_token.slice(0, -4)}AAAA`) });
    expect(bad.status).toBe(401);
    expect(maybe.seen).toHaveLength(1);
  });

  it('public route: our bearer token is not passed on, anybody else\'s Authorization is', async () => {
    open.seen.length = 0;
    const user = await registerUser(undefined, undefined, env);
    await call('/open/a', { env, headers: bearer(user.access_token) });
    await call('/open/b', { env, headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    await call('/open/c', { env, headers: { authorization: 'Bearer not-ours' } });
    expect(open.seen.map((s) => s.headers['authorization'])).toEqual([undefined, 'Basic dXNlcjpwYXNz', 'Bearer not-ours']);
    expect(open.seen.every((s) => s.headers['x-auth-user-id'] === undefined)).toBe(true);
  });
});

describe('bodies, responses and failures', () => {
  it('passes method and body through, and origin redirects back unchanged (less our cookies)', async () => {
    const origin = recordingOrigin(
      () => {
        const h = new Headers({ location: 'https://elsewhere.example/next?a=1' });
        h.append('set-cookie', '__Host-gatehouse=overwritten; Path=/; Secure');
        h.append('set-cookie', 'app=1; Path=/');
        return new Response('moved', { status: 302, headers: h });
      },
    );
    const e = proxyEnv([{ path: '/', origin: 'service:O', auth: 'public' }], { O: origin });
    const r = await call('/submit', { env: e, method: 'PUT', body: 'x'.repeat(200_000), headers: { 'content-type': 'text/plain' } });
    expect(origin.seen[0]!.method).toBe('PUT');
    expect(origin.seen[0]!.body).toHaveLength(200_000);
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('https://elsewhere.example/next?a=1');
    expect(r.headers.getSetCookie()).toEqual(['app=1; Path=/']);
    expect(await r.text()).toBe('moved');
    // The origin's response is the origin's: no gateway security headers added to it.
    expect(r.headers.get('x-frame-options')).toBeNull();
  });

  it('a URL origin gets the base path and the Host of the origin', async () => {
    const user = await registerUser(undefined, undefined, env);
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      return new Response(JSON.stringify({ url: req.url, aud: req.headers.get('x-auth-assertion') }));
    });
    const r = await call('/remote/x?y=2', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { url: string; aud: string };
    expect(body.url).toBe('https://origin.internal.example:8443/base/remote/x?y=2');
    expect(spy).toHaveBeenCalledTimes(1);
    // Default audience: the origin's URL origin.
    const { payload } = await assertionClaims(body.aud, 'https://origin.internal.example:8443');
    expect(payload.sub).toBe(user.user.id);
  });

  it('an unreachable origin is a 502 that names no host', async () => {
    const user = await registerUser(undefined, undefined, env);
    vi.spyOn(globalThis, 'fetch').mockRejectedValue(new TypeError('connect ECONNREFUSED origin.internal.example:8443'));
    const r = await call('/remote/x', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(502);
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ error: 'bad_gateway' });
    expect(text).not.toMatch(/internal|8443|ECONN/);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('a slow origin is a 504', async () => {
    vi.spyOn(globalThis, 'fetch').mockImplementation(
      (_input, init) =>
        new Promise((_resolve, reject) => {
          init!.signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    );
    const r = await call('/slow', { env });
    expect(r.status).toBe(504);
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ error: 'gateway_timeout' });
    expect(text).not.toContain('slow.internal');
  });

  it('a missing service binding is a 502, and a throwing one too', async () => {
    const e = proxyEnv([{ path: '/', origin: 'service:NOPE', auth: 'public' }]);
    expect((await call('/x', { env: e })).status).toBe(502);
    const e2 = proxyEnv([{ path: '/', origin: 'service:BROKEN', auth: 'public' }], {
      BROKEN: { fetch: () => Promise.reject(new Error('internal-host.local refused')) },
    });
    const r = await call('/x', { env: e2 });
    expect(r.status).toBe(502);
    expect(await r.text()).not.toContain('internal-host');
  });

  it('WebSocket upgrades go through with the upgrade headers, and the 101 comes back', async () => {
    const origin = recordingOrigin(() => {
      const pair = new WebSocketPair();
      pair[1].accept();
      return new Response(null, { status: 101, webSocket: pair[0] });
    });
    const e = proxyEnv([{ path: '/ws', origin: 'service:WS', auth: 'required' }], { WS: origin });
    const user = await registerUser(undefined, undefined, e);
    const r = await call('/ws', { env: e, headers: { ...bearer(user.access_token), upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } });
    expect(r.status).toBe(101);
    expect(r.webSocket).toBeTruthy();
    r.webSocket!.accept();
    r.webSocket!.close();
    expect(origin.seen[0]!.headers['upgrade']).toBe('websocket');
    expect(origin.seen[0]!.headers['sec-websocket-key']).toBe('dGhlIHNhbXBsZSBub25jZQ==');
    expect(origin.seen[0]!.headers['x-auth-user-id']).toBe(user.user.id);
    // Without a token the upgrade never reaches the origin.
    const anon = await call('/ws', { env: e, headers: { upgrade: 'websocket', connection: 'Upgrade' } });
    expect(anon.status).toBe(401);
    expect(origin.seen).toHaveLength(1);
  });
});

describe('the gateway cookies never reach an origin, however the Cookie header is split', () => {
  it('two Cookie header lines (joined with ", " by the runtime) do not smuggle __Host-gatehouse through', async () => {
    const origin = recordingOrigin();
    const env = proxyEnv([{ path: '/opt', origin: 'service:ORIGIN', auth: 'optional' }], { ORIGIN: origin });
    const { cookies } = await cookieSession(env);
    const headers = new Headers({ 'cf-connecting-ip': '203.0.113.7' });
    headers.append('cookie', 'theme=dark, plain');
    headers.append('cookie', `__Host-gatehouse=${cookies['__Host-gatehouse']}`);
    headers.append('cookie', `__Secure-gatehouse-refresh=${cookies['__Secure-gatehouse-refresh']}`);
    const ctx = createExecutionContext();
    const r = await worker.fetch(new Request(`${PUBLIC_URL}/opt/x`, { headers }), env as never, ctx);
    await waitOnExecutionContext(ctx);
    expect(r.status).toBe(200);
    const seen = origin.seen[0]!.headers;
    expect(seen.cookie).toBe('theme=dark, plain');
    expect(JSON.stringify(seen)).not.toContain(cookies['__Host-gatehouse']);
    expect(JSON.stringify(seen)).not.toContain(cookies['__Secure-gatehouse-refresh']);
  });
});
