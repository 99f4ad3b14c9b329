/**
 * Routes by host (README "Hosts"): the gateway's own host is served by the routes without
 * `host`; any other host by the routes naming it, the most specific host first (exact over
 * wildcard, a longer wildcard suffix over a shorter), then the longest path prefix; hosts are
 * compared in lower case and without the port. A host nothing names is refused with 404 and
 * never reaches an origin. Bad hosts are refused at start-up naming the route.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { call, makeEnv, PUBLIC_URL } from '../support/helpers';
import { proxyEnv, recordingOrigin, type RecordingOrigin } from '../support/proxy-helpers';

const origins: Record<string, RecordingOrigin> = {
  GATEWAY_ROOT: recordingOrigin(() => new Response('gateway root')),
  EXACT: recordingOrigin(() => new Response('exact')),
  EXACT_API: recordingOrigin(() => new Response('exact api')),
  WILD: recordingOrigin(() => new Response('wild')),
  DEEP_WILD: recordingOrigin(() => new Response('deep wild')),
};
const env = proxyEnv(
  [
    { path: '/', origin: 'service:GATEWAY_ROOT', auth: 'public' },
    { host: '*.example.org', path: '/', origin: 'service:WILD', auth: 'public' },
    { host: '*.team.example.org', path: '/', origin: 'service:DEEP_WILD', auth: 'public' },
    { host: 'Wiki.Example.org', path: '/', origin: 'service:EXACT', auth: 'public' },
    { host: 'wiki.example.org', path: '/api', origin: 'service:EXACT_API', auth: 'public' },
  ],
  origins,
);

function seenTotal(): number {
  return Object.values(origins).reduce((n, o) => n + o.seen.length, 0);
}

async function bodyAt(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await call(url, { env, headers });
  expect(r.status, url).toBe(200);
  return r.text();
}

describe('which route serves a host', () => {
  it('the gateway host is served by the routes without host, whatever the port', async () => {
    expect(await bodyAt(`${PUBLIC_URL}/page`)).toBe('gateway root');
    expect(await bodyAt('https://gate.example.com:8443/page')).toBe('gateway root');
  });

  it('an exact host wins over a wildcard that also matches it, and its longest prefix wins within it', async () => {
    expect(await bodyAt('https://wiki.example.org/page')).toBe('exact');
    expect(await bodyAt('https://wiki.example.org/api/x')).toBe('exact api');
  });

  it('a longer wildcard suffix wins over a shorter one', async () => {
    expect(await bodyAt('https://a.team.example.org/')).toBe('deep wild');
    expect(await bodyAt('https://x.y.team.example.org/')).toBe('deep wild');
    expect(await bodyAt('https://other.example.org/')).toBe('wild');
    // The wildcard covers names under the suffix, not the suffix itself.
    expect(await bodyAt('https://team.example.org/')).toBe('wild');
  });

  it('hosts are compared in lower case, without the port and a trailing dot', async () => {
    expect(await bodyAt('https://WIKI.Example.ORG:8443/page')).toBe('exact');
    expect(await bodyAt('https://wiki.example.org./page')).toBe('exact');
  });

  it('the origin hears the host the browser asked for', async () => {
    origins.EXACT!.seen.length = 0;
    await bodyAt('https://wiki.example.org/page');
    expect(origins.EXACT!.seen[0]!.headers['x-forwarded-host']).toBe('wiki.example.org');
  });

  it('a host no route names is refused with 404 and never reaches an origin', async () => {
    const before = seenTotal();
    for (const url of ['https://example.org/', 'https://elsewhere.example.net/page', 'https://example.org.evil.test/']) {
      const api = await call(url, { env, headers: { accept: 'application/json' } });
      expect(api.status, url).toBe(404);
      expect(await api.json()).toMatchObject({ error: 'not_found' });
      const page = await call(url, { env, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } });
      expect(page.status, url).toBe(404);
    }
    expect(seenTotal()).toBe(before);
  });

  it('with no host routes at all, another host is still refused rather than sent to the gateway host’s routes', async () => {
    const o = recordingOrigin();
    const single = proxyEnv([{ path: '/', origin: 'service:O', auth: 'public' }], { O: o });
    expect((await call('https://gate.example.com/x', { env: single })).status).toBe(200);
    expect((await call('https://stranger.example.com/x', { env: single })).status).toBe(404);
    expect(o.seen).toHaveLength(1);
  });

  it('on an app host, the gateway’s own endpoints answer 404 (the account pages live on the gateway host)', async () => {
    for (const path of ['/auth/login', '/auth/account', '/auth/me', '/auth/health', '/auth/sso?return_to=https%3A%2F%2Fwiki.example.org%2F']) {
      const r = await call(`https://wiki.example.org${path}`, { env, headers: { accept: 'application/json' } });
      expect(r.status, path).toBe(404);
      expect(await r.json()).toMatchObject({ error: 'not_found' });
    }
    // Still the gateway's on its own host.
    expect((await call(`${PUBLIC_URL}/auth/health`, { env })).status).toBe(200);
  });
});

describe('forward-auth picks a host route by X-Forwarded-Host', () => {
  const fa = makeEnv({
    ROUTES: JSON.stringify([
      { path: '/', origin: 'https://app.internal.example', auth: 'public' },
      { host: 'wiki.example.org', path: '/', origin: 'https://wiki.internal.example', auth: 'required' },
    ]),
  });

  it('a configured host’s route applies; any other host keeps the path-based choice', async () => {
    const wiki = await call('/auth/verify', { env: fa, headers: { 'x-forwarded-host': 'Wiki.Example.org:443', 'x-forwarded-uri': '/page' } });
    expect(wiki.status).toBe(401);
    const plain = await call('/auth/verify', { env: fa, headers: { 'x-forwarded-uri': '/page' } });
    expect(plain.status).toBe(200);
    const other = await call('/auth/verify', { env: fa, headers: { 'x-forwarded-host': 'other.example.org', 'x-forwarded-uri': '/page' } });
    expect(other.status).toBe(200);
  });
});

describe('start-up refuses bad hosts, naming the route', () => {
  const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://auth.example.com', SIGNING_KEYS: makeEnv().SIGNING_KEYS };
  const refusal = (routes: unknown[]) => {
    const r = parseConfig({ ...base, ROUTES: JSON.stringify(routes) });
    return r.ok ? null : r.error.message;
  };
  const route = (host: string, extra: Record<string, unknown> = {}) => ({ host, path: '/', origin: 'https://origin.example.net', auth: 'public', ...extra });

  it.each([
    ['*.com', /wildcard on a top-level domain or public suffix/],
    ['*.co.uk', /wildcard on a top-level domain or public suffix/],
    ['*.github.io', /wildcard on a top-level domain or public suffix/],
    ['*', /must be a DNS name/],
    ['a.*.example.com', /must be a DNS name/],
    ['https://app.example.com', /must be a DNS name/],
    ['app.example.com:8443', /must be a DNS name/],
    ['app.example.com/x', /must be a DNS name/],
    ['-app.example.com', /must be a DNS name/],
    ['', /must be a DNS name/],
    ['10.0.0.1', /not an IP address/],
  ])('host %s', (host, message) => {
    const error = refusal([route(host)]);
    expect(error).toMatch(/^ROUTES: /);
    expect(error).toMatch(message);
    expect(error).toContain('(at 0.host)');
  });

  it('a wildcard with two labels that is not a listed public suffix is fine', () => {
    expect(refusal([route('*.example.net', { origin: 'https://origin.example.org' })])).toBeNull();
    expect(refusal([route('*.tool.example.co.uk')])).toBeNull();
  });

  it('a host route whose origin is the gateway itself (its own host, or the gateway host)', () => {
    expect(refusal([route('app.example.com', { origin: 'https://app.example.com/x' })])).toMatch(/route 0 \(host app\.example\.com, path \/\) has the gateway itself as its origin/);
    expect(refusal([route('*.apps.example.com', { origin: 'https://a.apps.example.com' })])).toMatch(/route 0 .* has the gateway itself as its origin/);
    expect(refusal([route('app.example.com', { origin: 'https://AUTH.example.com:443/' })])).toMatch(/route 0 .* has the gateway itself as its origin/);
  });

  it('a host route naming the gateway’s own host', () => {
    expect(refusal([route('auth.example.com')])).toMatch(/route 0 \(host auth\.example\.com, path \/\) names the gateway's own host/);
    expect(refusal([route('*.example.com')])).toMatch(/route 0 .* names the gateway's own host/);
  });

  it('two routes with the same host and path (host and path compared case-insensitively)', () => {
    expect(refusal([route('app.example.org'), route('APP.example.org')])).toMatch(/routes 0 and 1 have the same host app\.example\.org and path \//);
    // The same path on two hosts, or on a host and the gateway's, is fine.
    expect(refusal([route('app.example.org'), route('wiki.example.org'), { path: '/', origin: 'https://o.example.net', auth: 'public' }])).toBeNull();
  });
});
