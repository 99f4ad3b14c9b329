/**
 * A route marked `resource = "mcp"` that cannot be one protected resource with one identifier
 * is refused at start-up: every request fails closed with `configuration_error` naming ROUTES
 * and the route's place in it, before any request reaches an origin.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { call, makeEnv } from '../support/helpers';
import { resourceUrl } from '../../../src/config/protected-resources';

const mcp = { origin: 'https://mcp.internal.example', auth: 'required', resource: 'mcp' };

function problem(routes: unknown[]): string | null {
  // The key a groups policy needs anyway, so that the check under test is the one that speaks.
  const result = parseConfig(makeEnv({ ROUTES: JSON.stringify(routes), TOKEN_ENCRYPTION_KEY: 'k'.repeat(32) }));
  return result.ok ? null : result.error.message;
}

describe('resource routes refused at start-up', () => {
  it('on a wildcard host (a resource needs one identifier)', async () => {
    const routes = [{ host: '*.tools.example.net', path: '/mcp', ...mcp }];
    expect(problem(routes)).toBe('ROUTES: a protected resource (resource = "mcp") needs one exact host, not a wildcard (at 0)');
    const r = await call('/mcp', { env: makeEnv({ ROUTES: JSON.stringify(routes) }) });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'ROUTES' });
  });

  it('covering the gateway\'s own URL, or under /.well-known/', () => {
    expect(problem([{ path: '/', ...mcp }])).toMatch(/^ROUTES: a protected resource .* at \/ it would be the gateway itself \(at 0\)$/);
    expect(problem([{ path: '/app', origin: 'https://a.example', auth: 'public' }, { path: '/.well-known/mcp', ...mcp }])).toMatch(/^ROUTES: a protected resource .* may not lie under \/\.well-known\/.* \(at 1\)$/);
  });

  it('deciding on groups, which no grant token carries', () => {
    expect(problem([{ path: '/mcp', ...mcp, allow: { groups: ['eng'] } }])).toMatch(/^ROUTES: a protected resource .* cannot decide on groups.* \(at 0\)$/);
    expect(problem([{ path: '/mcp', ...mcp, policy: { allow: [{ groups: ['eng'] }] } }])).toMatch(/cannot decide on groups/);
  });

  it('while a resource at / on an exact host of its own, or at a path of the gateway\'s host, is fine', () => {
    expect(problem([{ host: 'tools.example.net', path: '/', ...mcp }, { path: '/mcp', ...mcp, allow: { roles: ['staff'] } }])).toBeNull();
  });
});

describe('a resource identifier', () => {
  const route = (host?: string) => ({ host, path: '/mcp', ...mcp }) as Parameters<typeof resourceUrl>[0];

  it('is the route URL a client derives: the gateway scheme and port on the route host', () => {
    expect(resourceUrl(route(), 'https://gate.example.com')).toBe('https://gate.example.com/mcp');
    expect(resourceUrl(route('tools.example.com'), 'https://gate.example.com')).toBe('https://tools.example.com/mcp');
    // In development one wrangler dev answers every host on its port.
    expect(resourceUrl(route('app.localhost'), 'http://127.0.0.1:8787')).toBe('http://app.localhost:8787/mcp');
    expect(resourceUrl({ ...route('app.localhost'), path: '/' }, 'http://127.0.0.1:8787')).toBe('http://app.localhost:8787');
  });
});
