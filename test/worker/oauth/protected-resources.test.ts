/**
 * Routes marked `resource = "mcp"`: OAuth protected resources behind the proxy. The gateway
 * serves their RFC 9728 metadata (and only theirs: every other well-known path stays the
 * origin's), answers every caller without a good token with 401 and a challenge pointing to
 * that metadata (never a sign-in redirect), and admits only grant tokens issued for that very
 * resource, never a session token or cookie; the origin sees the user and the client acting for
 * them. Forward-auth answers the same.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { verifyGatehouseAssertion } from '../../../packages/verify/src/index';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { disableClient } from '../../../src/storage/oauth-clients';
import { issueGrantToken } from '../../../src/tokens/grant-token';
import { bearer, call, PUBLIC_URL, signedInUser, testKey, type TestEnv, type TokenResponse } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { sessionExec, sessionsObject } from '../support/user-sessions-store';

const mcp = recordingOrigin(() => Response.json({ jsonrpc: '2.0', id: 1, result: {} }));
const root = recordingOrigin(() => new Response('root origin'));
const ROUTES = [
  { path: '/mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp' },
  { path: '/other-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp' },
  { path: '/now-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', revocation: 'immediate' },
  { path: '/admin-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', allow: { roles: ['admin'] } },
  { path: '/mfa-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', require: ['mfa'] },
  { path: '/fresh-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', max_auth_age: 60 },
  { path: '/asked-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', policy: { allow: [{ caller: ['person'] }], external: 'service:DECIDER' } },
  { path: '/no-cli-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', policy: { allow: [{ caller: ['person'] }], deny: [{ client: ['cli_shut_out'] }] } },
  { path: '/one-cli-mcp', origin: 'service:MCP', auth: 'required', resource: 'mcp', policy: { allow: [{ client: ['cli_let_in'] }] } },
  { path: '/app', origin: 'service:ROOT', auth: 'required' },
  { host: 'tools.example.net', path: '/', origin: 'service:MCP', auth: 'required', resource: 'mcp' },
  { path: '/', origin: 'service:ROOT', auth: 'public' },
];
/** An external decision service that allows, and records who it was told about. */
const told: Record<string, unknown>[] = [];
const decider = {
  async fetch(input: RequestInfo | URL, init?: RequestInit) {
    told.push(((await new Request(input, init).json()) as { identity: Record<string, unknown> }).identity);
    return Response.json({ allow: true });
  },
};
const gatewayEnv: TestEnv = proxyEnv(ROUTES, { MCP: mcp, ROOT: root, DECIDER: decider }, { APP_NAME: 'Example Co' });
const keyring = await keyringFromJwks({ keys: [testKey] });

const MCP = `${PUBLIC_URL}/mcp`;
const METADATA = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
const CHALLENGE_NO_TOKEN = `Bearer resource_metadata="${METADATA}"`;

afterEach(() => {
  clearRevocationCache();
  mcp.seen.length = 0;
  root.seen.length = 0;
});

interface GrantOptions {
  audience?: string;
  ttlSeconds?: number;
  now?: number;
  amr?: string[];
  service?: boolean;
  /** When the user signed in; null: the token does not say. */
  authTime?: number | null;
  /** Issue it under no grant id, so that only its session and its client decide on its revocation. */
  withoutGrantId?: boolean;
  /** The client's id (default: a random one). */
  clientId?: string;
}

/** A signed-in user, a client, and a grant token the client got for them (as the token endpoint mints it). */
async function grant(t?: TokenResponse, options: GrantOptions = {}) {
  const session = t ?? (await signedInUser({ verified: true }, gatewayEnv));
  const { sub, sid } = decodeJwt<{ sub: string; sid: string }>(session.access_token);
  const { client } = await seedClient({ kind: 'public', authMethod: 'none', redirectUris: ['http://127.0.0.1:33418/callback'], ...(options.clientId === undefined ? {} : { id: options.clientId }) });
  const grantId = `grt_${crypto.randomUUID().replaceAll('-', '')}`;
  const issued = await issueGrantToken(
    keyring,
    {
      issuer: PUBLIC_URL,
      audience: options.audience ?? MCP,
      subject: options.service ? client.id : sub,
      sessionId: sid,
      clientId: client.id,
      clientEpoch: client.tokenEpoch,
      grantId: options.service || options.withoutGrantId ? undefined : grantId,
      scope: 'openid',
      ttlSeconds: options.ttlSeconds ?? 600,
      service: options.service,
      authTime: options.authTime === null ? undefined : (options.authTime ?? Math.floor(Date.now() / 1000) - 10),
      amr: options.amr ?? ['pwd'],
    },
    options.now,
  );
  return { token: issued.token, session, sub, sid, grantId, client };
}

const get = (path: string, headers: Record<string, string> = {}) => call(path, { env: gatewayEnv, headers: { accept: 'application/json', ...headers } });

/** Parses a Bearer challenge's parameters. */
function challenge(r: Response): Record<string, string> {
  const header = r.headers.get('www-authenticate') ?? '';
  expect(header.startsWith('Bearer ')).toBe(true);
  return Object.fromEntries([...header.slice(7).matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

describe('RFC 9728 metadata of a protected resource', () => {
  it('is served at the path-inserted well-known URL: the resource, the gateway as its authorization server, header bearer tokens, a name', async () => {
    const r = await get('/.well-known/oauth-protected-resource/mcp');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toEqual({
      resource: MCP,
      authorization_servers: [PUBLIC_URL],
      bearer_methods_supported: ['header'],
      resource_name: 'Example Co: gate.example.com/mcp',
    });
    expect(r.headers.get('cache-control')).toBe('public, max-age=300');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(root.seen).toHaveLength(0);
  });

  it('for a resource at / on its own host, is the bare well-known URL of that host', async () => {
    const r = await get('https://tools.example.net/.well-known/oauth-protected-resource');
    expect(r.status).toBe(200);
    expect(((await r.json()) as { resource: string }).resource).toBe('https://tools.example.net');
  });

  it('answers a browser client\'s CORS preflight', async () => {
    const r = await call('/.well-known/oauth-protected-resource/mcp', {
      env: gatewayEnv,
      method: 'OPTIONS',
      headers: { origin: 'https://chat.example.org', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' },
    });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('access-control-allow-headers')).toBe('*');
  });

  it('is not served for paths that are not a resource\'s: those stay the origin\'s, proxied as before', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/app', '/.well-known/oauth-protected-resource/mcp/deeper', '/.well-known/oauth-protected-resource/MCPX']) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(await r.text()).toBe('root origin');
    }
    expect(root.seen.map((s) => new URL(s.url).pathname)).toEqual([
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/app',
      '/.well-known/oauth-protected-resource/mcp/deeper',
      '/.well-known/oauth-protected-resource/MCPX',
    ]);
  });

  it('is not the gateway\'s at all when no route is a resource', async () => {
    const plain = proxyEnv([{ path: '/', origin: 'service:ROOT', auth: 'public' }], { ROOT: root });
    const r = await call('/.well-known/oauth-protected-resource/mcp', { env: plain });
    expect(await r.text()).toBe('root origin');
  });
});

describe('a caller without a token for the resource', () => {
  it('gets 401 with a challenge naming the metadata and no error code, JSON, readable by a browser client; the origin is not asked', async () => {
    const r = await get('/mcp');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(CHALLENGE_NO_TOKEN);
    expect(((await r.json()) as { error: string }).error).toBe('invalid_token');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('access-control-expose-headers')).toBe('WWW-Authenticate');
    expect(mcp.seen).toHaveLength(0);
  });

  it('is never redirected to the sign-in page, even when it asks for HTML', async () => {
    const r = await call('/mcp/x', { env: gatewayEnv, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('location')).toBeNull();
    expect(r.headers.get('www-authenticate')).toBe(CHALLENGE_NO_TOKEN);
  });

  it('with the gateway\'s session cookie is refused as if it sent nothing (a cookie on an MCP endpoint is a CSRF risk)', async () => {
    const { cookies } = await cookieSession(gatewayEnv);
    const r = await call('/mcp', { env: gatewayEnv, cookies, headers: { accept: 'application/json' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(CHALLENGE_NO_TOKEN);
    expect(mcp.seen).toHaveLength(0);
    // The same cookie still opens an ordinary route.
    expect((await call('/app', { env: gatewayEnv, cookies })).status).toBe(200);
  });

  it('with a garbage, an expired or a session token gets error="invalid_token" and the metadata', async () => {
    const expired = await grant(undefined, { now: Math.floor(Date.now() / 1000) - 3600, ttlSeconds: 600 });
    const session = await signedInUser({}, gatewayEnv);
    for (const token of ['garbage', expired.token, session.access_token]) {
      const r = await get('/mcp', bearer(token));
      expect(r.status).toBe(401);
      expect(challenge(r)).toMatchObject({ error: 'invalid_token', resource_metadata: METADATA });
    }
    const malformed = await get('/mcp', { authorization: 'Basic Zm9vOmJhcg==' });
    expect(malformed.status).toBe(401);
    expect(challenge(malformed)).toMatchObject({ error: 'invalid_token', resource_metadata: METADATA });
    expect(mcp.seen).toHaveLength(0);
  });

  it('with a token issued for another resource is refused: a token one MCP server got does not open another', async () => {
    const other = await grant(undefined, { audience: `${PUBLIC_URL}/other-mcp` });
    expect((await get('/other-mcp', bearer(other.token))).status).toBe(200);
    const r = await get('/mcp', bearer(other.token));
    expect(r.status).toBe(401);
    expect(challenge(r)).toMatchObject({ error: 'invalid_token', resource_metadata: METADATA });
    const onHost = await get('https://tools.example.net/', bearer(other.token));
    expect(onHost.status).toBe(401);
    expect(challenge(onHost).resource_metadata).toBe('https://tools.example.net/.well-known/oauth-protected-resource');
  });

  it('with a service token (no user) is refused', async () => {
    const service = await grant(undefined, { service: true });
    const r = await get('/mcp', bearer(service.token));
    expect(r.status).toBe(401);
    expect(challenge(r)).toMatchObject({ error: 'invalid_token', error_description: 'This resource takes tokens a client got for a user, not a service token.' });
  });
});

describe('revocation of a grant token at a resource', () => {
  it('a grant revoked in KV (another isolate\'s RFC 7009 revocation) is refused', async () => {
    const g = await grant();
    expect((await get('/mcp', bearer(g.token))).status).toBe(200);
    clearRevocationCache();
    await env.REVOKED.put(`sid:${g.grantId}`, '1');
    const r = await get('/mcp', bearer(g.token));
    expect(r.status).toBe(401);
    expect(challenge(r)).toMatchObject({ error: 'invalid_token', resource_metadata: METADATA });
  });

  // The user's object must answer for grant ids (the token endpoint's part): until then this fails at its first request.
  it('the user\'s session ended is refused at once on an immediate route, though KV holds nothing yet', async () => {
    const g = await grant(undefined, { audience: `${PUBLIC_URL}/now-mcp` });
    const now = Math.floor(Date.now() / 1000);
    await sessionExec(
      'INSERT INTO oauth_grants (id, session_id, client_id, scope, resource, refresh_hash, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL)',
      [g.grantId, g.sid, g.client.id, 'openid', `${PUBLIC_URL}/now-mcp`, now, now + 3600, now],
      g.sub,
    );
    expect((await get('/now-mcp', bearer(g.token))).status).toBe(200);
    await sessionsObject(g.sub).end(g.sub, [g.sid], Math.floor(Date.now() / 1000));
    const r = await get('/now-mcp', bearer(g.token));
    expect(r.status).toBe(401);
    expect(challenge(r)).toMatchObject({ error: 'invalid_token', resource_metadata: `${PUBLIC_URL}/.well-known/oauth-protected-resource/now-mcp` });
  });

  it('a disabled client\'s token for a user is refused at once on an immediate route, though KV holds nothing yet', async () => {
    const g = await grant(undefined, { audience: `${PUBLIC_URL}/now-mcp`, withoutGrantId: true });
    expect((await get('/now-mcp', bearer(g.token))).status).toBe(200);
    // Disabled in D1 alone, as another location sees it before KV's revocation of the old epoch arrives.
    expect(await disableClient(env.DB, g.client.id, g.client.tokenEpoch, 'epoch-after-disable', Math.floor(Date.now() / 1000))).toBe(true);
    const r = await get('/now-mcp', bearer(g.token));
    expect(r.status).toBe(401);
    expect(challenge(r)).toMatchObject({ error: 'invalid_token', error_description: 'The access token has been revoked.' });
    expect(mcp.seen).toHaveLength(1);
  });

  it('a disabled account\'s token is refused', async () => {
    const g = await grant();
    await env.DB.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').bind(Math.floor(Date.now() / 1000), g.sub).run();
    const r = await get('/mcp', bearer(g.token));
    expect(r.status).toBe(401);
  });
});

describe('a resource route\'s policy on the client acting for the user', () => {
  it('a deny rule naming the client refuses its tokens (403), another client\'s pass', async () => {
    const shut = await grant(undefined, { audience: `${PUBLIC_URL}/no-cli-mcp`, clientId: 'cli_shut_out' });
    expect((await get('/no-cli-mcp', bearer(shut.token))).status).toBe(403);
    const other = await grant(undefined, { audience: `${PUBLIC_URL}/no-cli-mcp` });
    expect((await get('/no-cli-mcp', bearer(other.token))).status).toBe(200);
  });

  it('an allow rule naming a client admits its tokens alone', async () => {
    const let_in = await grant(undefined, { audience: `${PUBLIC_URL}/one-cli-mcp`, clientId: 'cli_let_in' });
    expect((await get('/one-cli-mcp', bearer(let_in.token))).status).toBe(200);
    const other = await grant(undefined, { audience: `${PUBLIC_URL}/one-cli-mcp` });
    expect((await get('/one-cli-mcp', bearer(other.token))).status).toBe(403);
  });
});

describe('the external decision at a resource', () => {
  it('is told the user and the client acting for them', async () => {
    const g = await grant(undefined, { audience: `${PUBLIC_URL}/asked-mcp` });
    const r = await get('/asked-mcp', bearer(g.token));
    expect(r.status).toBe(200);
    expect(told.at(-1)).toMatchObject({ caller: 'person', sub: g.sub, session_id: g.sid, client_id: g.client.id });
  });
});

describe('what the origin behind a resource sees', () => {
  it('the user\'s identity headers, the client acting for them, an assertion naming the client; never the token itself', async () => {
    const g = await grant();
    const r = await get('/mcp/tools', { ...bearer(g.token), 'x-auth-client-id': 'cli_spoofed' });
    expect(r.status).toBe(200);
    const seen = mcp.seen.at(-1)!;
    expect(seen.headers['x-auth-user-id']).toBe(g.sub);
    expect(seen.headers['x-auth-email']).toBe(g.session.user.email);
    expect(seen.headers['x-auth-client-id']).toBe(g.client.id);
    expect(seen.headers['x-auth-session-id']).toBe(g.sid);
    expect(seen.headers.authorization).toBeUndefined();
    const assertion = decodeJwt(seen.headers['x-auth-assertion']!);
    expect(assertion).toMatchObject({ sub: g.sub, client_id: g.client.id, email: g.session.user.email });
  });

  it('the origin helper verifies that assertion and names the client', async () => {
    const g = await grant();
    expect((await get('/mcp', bearer(g.token))).status).toBe(200);
    const seen = mcp.seen.at(-1)!;
    const jwksUrl = `${PUBLIC_URL}/.well-known/jwks.json`;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      if (new Request(input as RequestInfo).url === jwksUrl) return Response.json(keyring.jwks);
      return new Response('unexpected fetch', { status: 599 });
    });
    try {
      const who = await verifyGatehouseAssertion({ headers: { 'x-auth-assertion': seen.headers['x-auth-assertion'] } }, { jwksUrl, audience: 'service:MCP' });
      expect(who).toMatchObject({ userId: g.sub, clientId: g.client.id });
    } finally {
      spy.mockRestore();
    }
  });

  it('an ordinary route\'s origin sees no client id', async () => {
    const session = await signedInUser({}, gatewayEnv);
    expect((await get('/app', bearer(session.access_token))).status).toBe(200);
    const seen = root.seen.at(-1)!;
    expect(seen.headers['x-auth-client-id']).toBeUndefined();
    expect(decodeJwt(seen.headers['x-auth-assertion']!).client_id).toBeUndefined();
  });
});

describe('the route\'s policy and step-up apply to the token\'s user', () => {
  it('a user the policy refuses gets a bare 403, not insufficient_scope (re-authorizing would not help)', async () => {
    const g = await grant(undefined, { audience: `${PUBLIC_URL}/admin-mcp` });
    const r = await get('/admin-mcp', bearer(g.token));
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toBe('forbidden');
    expect(r.headers.get('www-authenticate')).toBeNull();
    // The roles come from the user's current record (a grant token carries none).
    const promoted = await grant(undefined, { audience: `${PUBLIC_URL}/admin-mcp` });
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(['admin']), promoted.sub).run();
    expect((await get('/admin-mcp', bearer(promoted.token))).status).toBe(200);
  });

  it('a token without the second factor the route requires gets RFC 9470\'s challenge, with the metadata', async () => {
    const g = await grant(undefined, { audience: `${PUBLIC_URL}/mfa-mcp` });
    const r = await get('/mfa-mcp', bearer(g.token));
    expect(r.status).toBe(401);
    expect(challenge(r)).toMatchObject({ error: 'insufficient_user_authentication', acr_values: 'mfa', resource_metadata: `${PUBLIC_URL}/.well-known/oauth-protected-resource/mfa-mcp` });
    const strong = await grant(undefined, { audience: `${PUBLIC_URL}/mfa-mcp`, amr: ['pwd', 'mfa', 'otp'] });
    expect((await get('/mfa-mcp', bearer(strong.token))).status).toBe(200);
  });
});

describe('a resource route\'s max_auth_age', () => {
  it('admits a recent sign-in, and takes a token that does not say when the user signed in for too old', async () => {
    const audience = `${PUBLIC_URL}/fresh-mcp`;
    expect((await get('/fresh-mcp', bearer((await grant(undefined, { audience })).token))).status).toBe(200);
    for (const authTime of [null, Math.floor(Date.now() / 1000) - 600]) {
      const r = await get('/fresh-mcp', bearer((await grant(undefined, { audience, authTime })).token));
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_user_authentication", .*max_age=60, resource_metadata="https:\/\/gate\.example\.com\/\.well-known\/oauth-protected-resource\/fresh-mcp"$/);
    }
  });
});

describe('forward-auth for a resource route', () => {
  const verify = (headers: Record<string, string>) => call('/auth/verify', { env: gatewayEnv, headers: { 'x-forwarded-uri': '/mcp/tools', ...headers } });

  it('answers 401 with the metadata challenge without a token, and with a session cookie', async () => {
    const r = await verify({});
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(CHALLENGE_NO_TOKEN);
    const { cookies } = await cookieSession(gatewayEnv);
    const withCookie = await call('/auth/verify', { env: gatewayEnv, cookies, headers: { 'x-forwarded-uri': '/mcp/tools' } });
    expect(withCookie.status).toBe(401);
    expect(withCookie.headers.get('www-authenticate')).toBe(CHALLENGE_NO_TOKEN);
  });

  it('refuses a token for another resource and admits one for this one, with the client id', async () => {
    const other = await grant(undefined, { audience: `${PUBLIC_URL}/other-mcp` });
    const refused = await verify(bearer(other.token));
    expect(refused.status).toBe(401);
    expect(challenge(refused)).toMatchObject({ error: 'invalid_token', resource_metadata: METADATA });
    const g = await grant();
    const r = await verify(bearer(g.token));
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-user-id')).toBe(g.sub);
    expect(r.headers.get('x-auth-client-id')).toBe(g.client.id);
    expect(decodeJwt(r.headers.get('x-auth-assertion')!).client_id).toBe(g.client.id);
  });
});
