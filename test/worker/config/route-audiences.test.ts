import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';

/**
 * A route's audience is the `aud` of the assertions its origin receives; one key signs every
 * token the gateway makes, so no other kind of token may carry the same `aud`.
 */
describe("a route's audience is its own", () => {
  const base = { SIGNING_KEYS: env.SIGNING_KEYS, PUBLIC_URL: 'https://gate.example.com', LOGOUT_NOTICES: env.LOGOUT_NOTICES };
  const parse = (routes: unknown[]) => parseConfig({ ...base, ROUTES: JSON.stringify(routes) });
  const route = (extra: Record<string, unknown>) => ({ path: '/x', origin: 'https://x.origin.test', auth: 'required', ...extra });

  it('accepts the default audience (the origin), a name of its own, and a notice target beside it', () => {
    expect(parse([route({})]).ok).toBe(true);
    expect(parse([route({ audience: 'notes-api' })]).ok).toBe(true);
    expect(parse([route({ logout_notify: 'https://x.origin.test/logout' })]).ok).toBe(true);
    expect(parse([route({ origin: 'service:NOTES', logout_notify: 'service:NOTES/logout' })]).ok).toBe(true);
  });

  it.each([
    ["the gateway's session tokens", [route({ audience: 'https://gate.example.com' })], /session tokens \(PUBLIC_URL\)/],
    ["the userinfo endpoint's tokens", [route({ audience: 'https://gate.example.com/auth/userinfo' })], /userinfo/],
    ["a protected resource's grant tokens", [route({ path: '/mcp', resource: 'mcp' }), route({ path: '/y', audience: 'https://gate.example.com/mcp' })], /protected resource \/mcp/],
    ["its own logout notices (a service binding at /)", [route({ origin: 'service:NOTES', logout_notify: 'service:NOTES' })], /logout notices sent to service:NOTES/],
    ["another route's logout notices", [route({ logout_notify: 'https://x.origin.test/logout' }), route({ path: '/y', audience: 'https://x.origin.test/logout' })], /logout notices/],
    ["an app host's session tokens", [route({ host: 'app.example.com', path: '/' }), route({ path: '/y', audience: 'https://app.example.com' })], /app host app\.example\.com/],
    ["a wildcard host's session tokens", [route({ host: '*.apps.example.com', path: '/' }), route({ path: '/y', audience: 'https://notes.apps.example.com' })], /app host notes\.apps\.example\.com/],
  ])('refuses an audience equal to that of %s', (_name, routes, message) => {
    const r = parse(routes);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.setting).toBe('ROUTES');
      expect(r.error.message).toMatch(message);
      expect(r.error.message).toMatch(/set the route's audience to a name of its own/);
    }
  });
});
