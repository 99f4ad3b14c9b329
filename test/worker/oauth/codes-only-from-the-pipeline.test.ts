/**
 * An authorization code is minted only on the listed endpoints (auth/sign-in.ts
 * `SIGN_IN_ENDPOINTS`, step `grant`): a route that is not in the list, or is listed for another
 * method or step, calling `issueAuthorizationCode` with a live session gets a logged 500 and
 * no code is stored.
 */
import { decodeJwt } from 'jose';
import { Hono, type Context } from 'hono';
import { describe, expect, it } from 'vitest';
import { authenticate } from '../../../src/auth/authenticate';
import { issueAuthorizationCode } from '../../../src/auth/sign-in';
import { loadConfig } from '../../../src/config/load';
import type { AppEnv } from '../../../src/env';
import { readAccessCookie } from '../../../src/http/cookies';
import { configure } from '../../../src/middleware/configure';
import { errorHandler } from '../../../src/middleware/error-handler';
import { makeEnv } from '../support/helpers';
import { sessionRows } from '../support/user-sessions-store';
import { CHALLENGE, signedInBrowser } from './authorize-support';

const e = makeEnv();

function appWithRoutes() {
  const loaded = loadConfig(e);
  if (!loaded.ok) throw loaded.error;
  const config = loaded.config;
  const handler = async (c: Context<AppEnv>) => {
    const auth = await authenticate(c, readAccessCookie(c)!);
    const code = await issueAuthorizationCode(c, auth, { clientId: 'cli_x', redirectUri: 'https://app.example.org/callback', scope: 'openid', nonce: null, codeChallenge: CHALLENGE, resource: null });
    return c.json({ issued: code !== null });
  };
  const routes = new Hono<AppEnv>()
    .get('/authorize-sneaky', handler)
    // Listed for `grant`, with another method.
    .put('/authorize', handler)
    // Listed, but for another step (`host`).
    .get('/sso', handler)
    .get('/authorize', handler);
  const app = new Hono<AppEnv>().use(configure(config));
  app.route(config.AUTH_PREFIX, new Hono<AppEnv>().route('/', routes));
  app.onError(errorHandler);
  return app;
}

describe('authorization codes come only from the listed endpoints', () => {
  it('an unlisted route, a listed path with another method, or another step’s endpoint: 500, no code; the listed one issues', async () => {
    const { jar } = await signedInBrowser(e);
    const userId = decodeJwt(jar['__Host-gatehouse']!).sub!;
    const cookie = `__Host-gatehouse=${jar['__Host-gatehouse']}`;
    const app = appWithRoutes();
    for (const [method, path] of [['GET', '/auth/authorize-sneaky'], ['PUT', '/auth/authorize'], ['GET', '/auth/sso']] as const) {
      const r = await app.request(path, { method, headers: { cookie } }, e);
      expect(r.status, `${method} ${path}`).toBe(500);
      expect(await sessionRows('SELECT hash FROM oauth_codes', [], userId)).toHaveLength(0);
    }
    const listed = await app.request('/auth/authorize', { headers: { cookie } }, e);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ issued: true });
    expect(await sessionRows('SELECT hash FROM oauth_codes', [], userId)).toHaveLength(1);
  });
});
