/**
 * `/.well-known/`: the gateway owns only `jwks.json` there, and on its own host the authorization
 * server's metadata (test/worker/oauth/discovery.test.ts). Every other path (other discovery
 * documents, `security.txt`) is an origin's when a route covers it, and goes back exactly as
 * the origin sent it; without a route it is the gateway's own 404.
 */
import { describe, expect, it } from 'vitest';
import { call, makeEnv } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

/**
 * A response with immutable headers, as every `fetch()` or service binding returns in workerd
 * (a plain `new Response()` is mutable and would hide an attempt to edit the origin's answer):
 * the Cache API hands back such a response.
 */
async function fetchedResponse(body: string, init: { status: number; headers: Record<string, string> }): Promise<Response> {
  const cache = await caches.open('fake-origin');
  const key = `https://origin.example/${crypto.randomUUID()}`;
  await cache.put(key, new Response(body, { ...init, headers: { ...init.headers, 'cache-control': 'max-age=60' } }));
  const cached = await cache.match(key);
  if (!cached) throw new Error('the cache did not keep the fake origin response');
  return cached;
}

const DISCOVERY = JSON.stringify({ issuer: 'https://gate.example.com', authorization_endpoint: 'https://gate.example.com/oauth/authorize' });
const SECURITY_TXT = 'Contact: mailto:security@example.com\nExpires: 2030-01-01T00:00:00.000Z\n';

const root = recordingOrigin(async (req) => {
  const path = new URL(req.url).pathname;
  if (path === '/.well-known/webfinger') {
    return fetchedResponse(DISCOVERY, { status: 200, headers: { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'x-origin': 'discovery' } });
  }
  if (path === '/.well-known/security.txt') {
    return fetchedResponse(SECURITY_TXT, { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-origin': 'security' } });
  }
  return fetchedResponse('gone', { status: 410, headers: { 'content-type': 'text/plain', 'x-origin': 'other' } });
});
const routed = proxyEnv([{ path: '/', origin: 'service:ROOT', auth: 'public' }], { ROOT: root });

describe('/.well-known/ paths behind a route on /', () => {
  it('an origin’s discovery document comes back as the origin sent it, without the gateway headers', async () => {
    const r = await call('/.well-known/webfinger', { env: routed });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(DISCOVERY);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('x-origin')).toBe('discovery');
    expect(r.headers.get('x-frame-options')).toBeNull();
    expect(r.headers.get('content-security-policy')).toBeNull();
    expect(r.headers.get('cross-origin-resource-policy')).toBeNull();
  });

  it('security.txt and an origin error status come back unchanged too', async () => {
    const txt = await call('/.well-known/security.txt', { env: routed });
    expect(txt.status).toBe(200);
    expect(await txt.text()).toBe(SECURITY_TXT);
    expect(txt.headers.get('x-origin')).toBe('security');
    expect(txt.headers.get('x-frame-options')).toBeNull();
    const gone = await call('/.well-known/mcp.json', { env: routed });
    expect(gone.status).toBe(410);
    expect(await gone.text()).toBe('gone');
    expect(gone.headers.get('x-origin')).toBe('other');
  });

  it('the JWKS is still the gateway’s own, with its headers, and never reaches the origin', async () => {
    root.seen.length = 0;
    const r = await call('/.well-known/jwks.json', { env: routed });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { keys: unknown[] }).keys).toHaveLength(1);
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(root.seen).toHaveLength(0);
  });
});

describe('/.well-known/ paths without a route', () => {
  it('answers the gateway’s 404 JSON with its headers, not a 500', async () => {
    const env = makeEnv();
    for (const path of ['/.well-known/webfinger', '/.well-known/security.txt']) {
      const r = await call(path, { env, headers: { accept: 'application/json' } });
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: string }).error).toBe('not_found');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
    }
  });
});
