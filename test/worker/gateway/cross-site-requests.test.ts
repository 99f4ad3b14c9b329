/**
 * Defects found by the security review, each pinned by the test that showed it.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import worker from '../../../src/index';
import { verifyGatehouseAssertion } from '../../../src/origin/verify-assertion';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { baseEnv, bearer, call, countRows, defaultEnv, PUBLIC_URL, registerUser, setCookies, testKey } from '../support/helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const now = () => Math.floor(Date.now() / 1000);
/** verifyAccessToken's clock tolerance: a token is accepted until `exp` + this. */
const CLOCK_TOLERANCE_S = 30;

/** The KV expiry (Unix seconds) of one REVOKED key. */
async function kvExpiration(name: string): Promise<number | undefined> {
  const { keys } = await baseEnv.REVOKED.list({ prefix: name });
  return keys.find((k) => k.name === name)?.expiration;
}

describe('forward-auth: the route is not chosen by a header the client can add', () => {
  const env = proxyEnv([
    { path: '/ops', origin: 'https://ops.internal.example', auth: 'required', allow: { roles: ['ops'] } },
    { path: '/pub', origin: 'https://pub.internal.example', auth: 'public' },
  ]);

  it('nginx sets X-Original-URI; a client-sent X-Forwarded-Uri naming a public route does not open /ops', async () => {
    const anonymous = await call('/auth/verify', { env, headers: { 'x-original-uri': '/ops/deploy', 'x-forwarded-uri': '/pub/a' } });
    expect(anonymous.status).toBe(403);
    expect(await anonymous.json()).toMatchObject({ error: 'forbidden' });

    const { access_token } = await registerUser(undefined, undefined, env);
    const signedIn = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-original-uri': '/ops/deploy', 'x-forwarded-uri': '/pub/a' } });
    expect(signedIn.status).toBe(403);
    expect(signedIn.headers.get('x-auth-user-id')).toBeNull();
  });

  it('Traefik/Caddy set X-Forwarded-Uri; a client-sent X-Original-URI does not override it either', async () => {
    const r = await call('/auth/verify', { env, headers: { 'x-forwarded-uri': '/ops/deploy', 'x-original-uri': '/pub/a' } });
    expect(r.status).toBe(403);
  });

  it('both headers naming the same route are fine', async () => {
    const r = await call('/auth/verify', { env, headers: { 'x-forwarded-uri': '/pub/a?x=1', 'x-original-uri': '/PUB/b' } });
    expect(r.status).toBe(200);
  });
});

describe('revocation outlives every token it revokes (verification accepts exp + clock tolerance)', () => {
  it('logout: the sid key stays in KV until every token of the session is refused by its exp anyway (no per-token jti key)', async () => {
    const t = await registerUser();
    const claims = decodeJwt(t.access_token) as { jti: string; sid: string; exp: number };
    const before = now();
    const r = await call('/auth/logout', { method: 'POST', headers: bearer(t.access_token) });
    expect(r.status).toBe(200);
    expect(await kvExpiration(`jti:${claims.jti}`)).toBeUndefined();
    // Any token of the session was issued before now, so it expires by now + ACCESS_TOKEN_TTL (600).
    expect(await kvExpiration(`sid:${claims.sid}`)).toBeGreaterThanOrEqual(before + 600 + CLOCK_TOLERANCE_S);
  });
});

describe('sign-out from a browser whose access cookie has expired', () => {
  it('a stale access cookie next to a live refresh cookie still signs out (session ended, cookies cleared)', async () => {
    const { cookies } = await cookieSession(defaultEnv);
    const claims = decodeJwt(cookies['__Host-gatehouse']) as { sub: string; sid: string; email: string };
    const ring = await keyringFromJwks({ keys: [testKey] });
    const stale = await issueAccessToken(
      { keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
      { userId: claims.sub, sessionId: claims.sid, email: claims.email, emailVerified: false, roles: [], amr: ['pwd'], authTime: 0, ttlSeconds: 600 },
      now() - 3600,
    );
    const r = await call('/auth/logout', {
      method: 'POST',
      headers: { 'sec-fetch-site': 'same-origin' },
      cookies: { '__Host-gatehouse': stale.token, '__Secure-gatehouse-refresh': cookies['__Secure-gatehouse-refresh'] },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ ok: true, ended_sessions: 1 });
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', claims.sid)).toBe(1);
    expect(setCookies(r).get('__Host-gatehouse')?.value).toBe('');
  });

  it('a bad bearer token is still refused', async () => {
    const r = await call('/auth/logout', { method: 'POST', headers: bearer('a.b.c') });
    expect(r.status).toBe(401);
  });
});

describe('forward-auth: cookie-authenticated unsafe requests from another site are refused, as on the proxy', () => {
  const env = proxyEnv([{ path: '/app', origin: 'https://app.internal.example', auth: 'required' }]);

  it('X-Forwarded-Method POST with a cross-site or same-site Sec-Fetch-Site, or a foreign Origin: 403', async () => {
    const { cookies } = await cookieSession(env);
    const variants: Record<string, string>[] = [
      { 'x-forwarded-method': 'POST', 'sec-fetch-site': 'cross-site' },
      { 'x-forwarded-method': 'DELETE', 'sec-fetch-site': 'same-site' },
      { 'x-original-method': 'put', origin: 'https://evil.example' },
      { 'x-forwarded-method': 'POST', origin: 'null', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com' },
    ];
    for (const headers of variants) {
      const r = await call('/auth/verify', { env, cookies, headers: { 'x-forwarded-uri': '/app/x', ...headers } });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
      expect(r.headers.get('x-auth-user-id')).toBeNull();
    }
  });

  it('same-origin posts, the app\'s own Origin, safe methods and bearer clients still pass', async () => {
    const { cookies } = await cookieSession(env);
    const passing: Record<string, string>[] = [
      { 'x-forwarded-method': 'POST', 'sec-fetch-site': 'same-origin' },
      { 'x-forwarded-method': 'POST', origin: 'https://app.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com' },
      { 'x-forwarded-method': 'GET', 'sec-fetch-site': 'cross-site' },
      {},
    ];
    for (const headers of passing) {
      const r = await call('/auth/verify', { env, cookies, headers: { 'x-forwarded-uri': '/app/x', ...headers } });
      expect(r.status, JSON.stringify(headers)).toBe(200);
      expect(r.headers.get('x-auth-user-id')).toBeTruthy();
    }
    const { access_token } = await registerUser(undefined, undefined, env);
    const api = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-forwarded-uri': '/app/x', 'x-forwarded-method': 'POST', 'sec-fetch-site': 'cross-site' } });
    expect(api.status).toBe(200);
  });
});

describe('token confusion between access tokens and assertions', () => {
  afterEach(() => vi.restoreAllMocks());
  const env = proxyEnv([]);

  it('an assertion whose aud is PUBLIC_URL (forward-auth, unknown path) is not accepted as an access token', async () => {
    const { access_token } = await registerUser(undefined, undefined, env);
    const r = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-original-uri': '/elsewhere' } });
    const assertion = r.headers.get('x-auth-assertion')!;
    expect(decodeJwt(assertion).aud).toBe(PUBLIC_URL);
    const me = await call('/auth/me', { env, headers: bearer(assertion) });
    expect(me.status).toBe(401);
    expect(await me.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('the origin helper refuses a fresh access token presented as X-Auth-Assertion for audience PUBLIC_URL', async () => {
    const { access_token } = await registerUser(undefined, undefined, env);
    const jwks = await (await call('/.well-known/jwks.json', { env })).text();
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () => new Response(jwks, { headers: { 'content-type': 'application/json' } }));
    await expect(
      verifyGatehouseAssertion({ headers: { 'x-auth-assertion': access_token } }, { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: PUBLIC_URL }),
    ).rejects.toThrow(/not valid/);
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

describe('cross-site WebSocket hijacking: a cookie-authenticated upgrade from another site is refused', () => {
  const wsHeaders = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };

  it('403 for a cross-site or same-site handshake, or a foreign Origin; the origin is never asked', async () => {
    const origin = recordingOrigin(() => {
      const pair = new WebSocketPair();
      pair[1].accept();
      return new Response(null, { status: 101, webSocket: pair[0] });
    });
    const env = proxyEnv([{ path: '/ws', origin: 'service:WS', auth: 'required' }], { WS: origin });
    const { cookies } = await cookieSession(env);
    const variants: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }];
    for (const extra of variants) {
      const r = await call('/ws', { env, cookies, headers: { ...wsHeaders, ...extra } });
      expect(r.status, JSON.stringify(extra)).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
    expect(origin.seen).toHaveLength(0);

    const own = await call('/ws', { env, cookies, headers: { ...wsHeaders, 'sec-fetch-site': 'same-origin', origin: PUBLIC_URL } });
    expect(own.status).toBe(101);
    own.webSocket!.accept();
    own.webSocket!.close();
    expect(origin.seen).toHaveLength(1);
  });
});

describe('an origin cannot plant the OAuth flow cookie (login CSRF through a proxied response)', () => {
  it('Set-Cookie __Host-gatehouse-oauth from an origin is dropped; the origin\'s own cookies stay', async () => {
    const origin = recordingOrigin(() => {
      const headers = new Headers();
      headers.append('set-cookie', '__Host-gatehouse-oauth=planted; Path=/; Secure; HttpOnly; SameSite=Lax');
      headers.append('set-cookie', 'app=1; Path=/');
      return new Response('ok', { headers });
    });
    const env = proxyEnv([{ path: '/pub', origin: 'service:ORIGIN', auth: 'public' }], { ORIGIN: origin });
    const r = await call('/pub/x', { env });
    expect(r.status).toBe(200);
    expect(r.headers.getSetCookie()).toEqual(['app=1; Path=/']);
  });
});
