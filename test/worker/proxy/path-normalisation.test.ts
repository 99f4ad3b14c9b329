/**
 * Route matching on the normalised path: longest prefix wins, and traversal, encoding, `;`,
 * `//`, case and double-encoding tricks never reach a protected route without auth.
 */
import { describe, expect, it } from 'vitest';
import { encodePath, normalisePath } from '../../../src/proxy/normalise-path';
import { bearer, call, registerUser } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const pub = recordingOrigin();
const admin = recordingOrigin();
const root = recordingOrigin();
const api = recordingOrigin();
const env = proxyEnv(
  [
    { path: '/', origin: 'service:ROOT', auth: 'public' },
    { path: '/public', origin: 'service:PUB', auth: 'public' },
    { path: '/admin', origin: 'service:ADMIN', auth: 'required' },
    { path: '/api/v1', origin: 'service:API', auth: 'required', strip_prefix: true },
  ],
  { ROOT: root, PUB: pub, ADMIN: admin, API: api },
);

function reset() {
  for (const o of [pub, admin, root, api]) o.seen.length = 0;
}

describe('normalisePath', () => {
  it('decodes once, drops empty segments, keeps a trailing slash', () => {
    expect(normalisePath('/a//b/%61/')).toEqual({ segments: ['a', 'b', 'a'], trailingSlash: true });
    expect(normalisePath('/')).toEqual({ segments: [], trailingSlash: false });
    expect(encodePath(['a b', 'é', "x:y@z!$&'()*+,="], false)).toBe("/a%20b/%C3%A9/x:y@z!$&'()*+,=");
  });
  it.each(['/a%2fb', '/a%2Fb', '/a%5cb', '/a;b', '/a/..;/b', '/%252e%252e/x', '/a%25', '/%00', '/a%0a', '/%e0%a4%a', '/a\\b'])(
    'refuses %s',
    (p) => {
      expect(() => normalisePath(p)).toThrow(/request path/);
    },
  );
});

describe('route matching', () => {
  it('longest prefix wins and strip_prefix removes the matched prefix', async () => {
    reset();
    const { access_token } = await registerUser(undefined, undefined, env);
    expect((await call('/public/page?q=1', { env })).status).toBe(200);
    expect(new URL(pub.seen[0]!.url).pathname + new URL(pub.seen[0]!.url).search).toBe('/public/page?q=1');
    expect((await call('/other', { env })).status).toBe(200);
    expect(new URL(root.seen[0]!.url).pathname).toBe('/other');
    expect((await call('/api/v1/items/7/', { env, headers: bearer(access_token) })).status).toBe(200);
    expect(new URL(api.seen[0]!.url).pathname).toBe('/items/7/');
    expect((await call('/api/v1', { env, headers: bearer(access_token) })).status).toBe(200);
    expect(new URL(api.seen[1]!.url).pathname).toBe('/');
    // `/publicity` is not under `/public`: segments, not characters.
    expect((await call('/publicity', { env })).status).toBe(200);
    expect(root.seen.map((s) => new URL(s.url).pathname)).toEqual(['/other', '/publicity']);
    expect(pub.seen).toHaveLength(1);
  });

  it('no matching route is a 404 and the gateway endpoints are never proxied', async () => {
    reset();
    const none = proxyEnv([{ path: '/app', origin: 'service:PUB', auth: 'public' }], { PUB: pub });
    const r = await call('/elsewhere', { env: none });
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: 'not_found' });
    for (const p of ['/auth/nope', '/AUTH/me', 'https://gate.example.com//auth/me']) {
      const res = await call(p, { env });
      expect(res.status, p).toBe(404);
      expect(((await res.json()) as { error: string }).error, p).toBe('not_found');
    }
    // The router decodes %61 itself: this is the gateway's own /auth/me, not a proxied path.
    const decoded = await call('/%61uth/me', { env });
    expect(decoded.status).toBe(401);
    expect(decoded.headers.get('www-authenticate')).toContain('invalid_token');
    expect([...pub.seen, ...root.seen]).toHaveLength(0);
  });

  // Each of these names /admin (or something only the edge could mean) while looking like
  // something else: none may reach the admin origin, or any origin, without a token.
  it.each([
    ['/public/../admin', 401],
    ['/public/%2e%2e/admin', 401],
    ['/public/%2E%2E/admin', 401],
    ['/public/.%2e/admin', 401],
    ['/public/%2e/../admin', 401],
    ['/public;/../admin', 401],
    ['/ADMIN', 401],
    ['/Admin/users', 401],
    ['https://gate.example.com//admin', 401],
    ['/public/..//admin', 401],
    ['/%61dmin', 401],
    ['/%41DMIN/x', 401],
    ['/public\\..\\admin', 401],
    ['/public/%2e%2e%2fadmin', 400],
    ['/public%2f..%2fadmin', 400],
    ['/public/..%2fadmin', 400],
    ['/public/..%5cadmin', 400],
    ['/public/..;/admin', 400],
    ['/public/;/admin', 400],
    ['/public/%252e%252e/admin', 400],
    ['/public/%25252e/admin', 400],
    ['/public/%00/admin', 400],
    ['/admin%00', 400],
  ])('%s -> %i, never reaching an origin', async (path, status) => {
    reset();
    const r = await call(path, { env, headers: { accept: 'application/json' } });
    expect(r.status).toBe(status);
    expect((await r.json()) as { error: string }).toMatchObject({ error: status === 401 ? 'invalid_token' : 'invalid_request' });
    expect([...pub.seen, ...admin.seen, ...root.seen, ...api.seen]).toHaveLength(0);
  });

  it('with a token, the origin receives exactly the path that was matched', async () => {
    reset();
    const { access_token } = await registerUser(undefined, undefined, env);
    const r = await call('/public/%2e%2e/%41dmin//users/%C3%A9%20x', { env, headers: bearer(access_token) });
    expect(r.status).toBe(200);
    expect(admin.seen).toHaveLength(1);
    expect(new URL(admin.seen[0]!.url).pathname).toBe('/Admin/users/%C3%A9%20x');
    expect(pub.seen).toHaveLength(0);
  });
});
