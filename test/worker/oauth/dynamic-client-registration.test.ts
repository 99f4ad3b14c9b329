/**
 * Dynamic client registration (RFC 7591) at `/auth/oauth/register`: absent unless
 * DYNAMIC_CLIENT_REGISTRATION is `open`; then rate-limited per IP, answering §3.2.1's fields,
 * refusing with §3.2.2's codes; a dynamic client is never first-party, never a service, never
 * allowed an audience of its own, and its redirect URIs follow DCR_REDIRECT_URI_POLICY.
 */
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/util/random';
import { authenticateAt, basic } from '../support/client-auth';
import { baseEnv, call, countRows, makeEnv } from '../support/helpers';

const open = makeEnv({ DYNAMIC_CLIENT_REGISTRATION: 'open' });
const register = (json: unknown, env = open, headers: Record<string, string> = {}) => call('/auth/oauth/register', { json, env, headers });

async function row(id: string) {
  return baseEnv.DB.prepare('SELECT * FROM oauth_clients WHERE id = ?').bind(id).first<Record<string, unknown>>();
}

async function refusal(r: Response, code: string) {
  expect(r.status, await r.clone().text()).toBe(400);
  const body = await r.json<{ error: string; error_description: string; invalid_fields?: Record<string, string> }>();
  expect(body.error).toBe(code);
  return body;
}

describe('dynamic client registration: off by default', () => {
  it('is 404 while DYNAMIC_CLIENT_REGISTRATION is off, storing nothing', async () => {
    const before = await countRows('oauth_clients');
    for (const env of [undefined, makeEnv({ DYNAMIC_CLIENT_REGISTRATION: 'off' })]) {
      const r = await call('/auth/oauth/register', { json: { redirect_uris: ['https://app.example.org/cb'], token_endpoint_auth_method: 'none' }, env });
      expect(r.status).toBe(404);
      expect(await r.json()).toMatchObject({ error: 'not_found', error_description: expect.stringContaining('DYNAMIC_CLIENT_REGISTRATION') });
    }
    expect(await countRows('oauth_clients')).toBe(before);
  });
});

describe('dynamic client registration: settings', () => {
  it.each([
    ['DYNAMIC_CLIENT_REGISTRATION', 'yes'],
    ['DCR_REDIRECT_URI_POLICY', 'anything'],
    ['CLIENT_ID_METADATA_DOCUMENTS', 'maybe'],
  ])('a bad %s fails closed, naming the setting and not its value', async (setting, value) => {
    const r = await call('/auth/oauth/register', { json: {}, env: makeEnv({ [setting]: value }) });
    expect(r.status).toBe(500);
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ error: 'configuration_error', setting });
    expect(text).not.toContain(value);
  });
});

describe('dynamic client registration: open', () => {
  it('registers a public client and answers exactly the fields of RFC 7591 §3.2.1; stored as dynamic, not first-party, no audiences', async () => {
    const r = await register({
      client_name: 'Claude Desktop',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'openid profile mcp:tools',
      logo_uri: 'https://ignored.example/logo.png',
      first_party: true,
      allowed_audiences: ['https://api.example.org'],
    });
    expect(r.status, await r.clone().text()).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = await r.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['client_id', 'client_id_issued_at', 'client_name', 'grant_types', 'redirect_uris', 'response_types', 'scope', 'token_endpoint_auth_method'].sort());
    expect(body).toMatchObject({
      client_id: expect.stringMatching(/^cli_/),
      client_id_issued_at: expect.any(Number),
      client_name: 'Claude Desktop',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'openid profile',
    });
    expect(await row(String(body.client_id))).toMatchObject({
      kind: 'public',
      auth_method: 'none',
      source: 'dynamic',
      first_party: 0,
      allowed_audiences: '[]',
      secret_hash: null,
      allowed_scopes: '["openid","profile"]',
    });
    expect((await authenticateAt({ client_id: String(body.client_id) })).status).toBe(200);
    expect(await countRows('auth_events', "event = 'client_registered' AND detail LIKE ?", `%${String(body.client_id)}%`)).toBe(1);
  });

  it('by default (client_secret_basic) issues a secret once, never expiring, kept hashed; it authenticates the client', async () => {
    const r = await register({ redirect_uris: ['https://tools.example.net/oauth/cb'] });
    expect(r.status).toBe(201);
    const body = await r.json<{ client_id: string; client_secret: string; client_secret_expires_at: number; client_name: string; token_endpoint_auth_method: string; grant_types: string[] }>();
    expect(body).toMatchObject({ token_endpoint_auth_method: 'client_secret_basic', client_secret_expires_at: 0, client_name: 'tools.example.net', grant_types: ['authorization_code'] });
    expect(body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await row(body.client_id);
    expect(stored).toMatchObject({ kind: 'confidential', secret_hash: await sha256(body.client_secret), source: 'dynamic' });
    expect(JSON.stringify(stored)).not.toContain(body.client_secret);
    expect((await authenticateAt({}, { authorization: basic(body.client_id, body.client_secret) })).status).toBe(200);
  });

  it('refuses what a dynamic client may not be, with invalid_client_metadata naming the field', async () => {
    const cb = { redirect_uris: ['https://app.example.org/cb'] };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...cb, grant_types: ['client_credentials'] }, 'grant_types.0'],
      [{ ...cb, token_endpoint_auth_method: 'private_key_jwt' }, 'token_endpoint_auth_method'],
      [{ ...cb, jwks: { keys: [] } }, 'jwks'],
      [{ ...cb, jwks_uri: 'https://app.example.org/jwks' }, 'jwks_uri'],
      [{ ...cb, response_types: ['token'] }, 'response_types.0'],
      [{ ...cb, client_name: 'x'.repeat(101) }, 'client_name'],
      [{ redirect_uris: [], token_endpoint_auth_method: 'none' }, 'redirect_uris'],
      [{ redirect_uris: Array.from({ length: 11 }, (_, i) => `https://app.example.org/cb${i}`) }, 'redirect_uris'],
      [{ redirect_uris: 'https://app.example.org/cb' }, 'redirect_uris'],
    ];
    const before = await countRows('oauth_clients');
    for (const [json, field] of cases) {
      const body = await refusal(await register(json), 'invalid_client_metadata');
      expect(Object.keys(body.invalid_fields ?? {}), JSON.stringify(json)).toEqual([field]);
    }
    expect(await countRows('oauth_clients')).toBe(before);
  });

  it('refuses bad redirect URIs with invalid_redirect_uri, and private-use schemes for a client with a secret', async () => {
    for (const uri of ['https://app.example.org/cb#x', 'http://app.example.org/cb', 'https://*.example.org/cb', 'cb', 'javascript:alert(1)']) {
      const body = await refusal(await register({ redirect_uris: [uri], token_endpoint_auth_method: 'none' }), 'invalid_redirect_uri');
      expect(Object.keys(body.invalid_fields ?? {})).toEqual(['redirect_uris.0']);
    }
    expect((await register({ redirect_uris: ['com.example.app:/cb'], token_endpoint_auth_method: 'none' })).status).toBe(201);
    await refusal(await register({ redirect_uris: ['com.example.app:/cb'], token_endpoint_auth_method: 'client_secret_post' }), 'invalid_redirect_uri');
  });

  it('refuses redirect URIs on the gateway’s own host or an app host: the consent page would show them as the app’s', async () => {
    const env = makeEnv({
      DYNAMIC_CLIENT_REGISTRATION: 'open',
      ROUTES: JSON.stringify([
        { host: 'wiki.example.com', path: '/', origin: 'https://wiki-origin.example.net', auth: 'required' },
        { host: '*.apps.example.com', path: '/', origin: 'https://apps-origin.example.net', auth: 'required' },
        { path: '/docs', origin: 'https://docs-origin.example.net', auth: 'public' },
      ]),
    });
    for (const uri of ['https://gate.example.com/docs/cb', 'https://GATE.example.com:8443/cb', 'https://wiki.example.com/cb', 'https://notes.apps.example.com/cb']) {
      const body = await refusal(await register({ redirect_uris: [uri], token_endpoint_auth_method: 'none' }, env), 'invalid_redirect_uri');
      expect(Object.keys(body.invalid_fields ?? {}), uri).toEqual(['redirect_uris.0']);
    }
    expect((await register({ redirect_uris: ['https://gate.example.com.attacker.example/cb'], token_endpoint_auth_method: 'none' }, env)).status).toBe(201);
  });

  it('DCR_REDIRECT_URI_POLICY=loopback-only accepts only loopback and private-use redirect URIs', async () => {
    const env = makeEnv({ DYNAMIC_CLIENT_REGISTRATION: 'open', DCR_REDIRECT_URI_POLICY: 'loopback-only' });
    const body = await refusal(await register({ redirect_uris: ['https://app.example.org/cb'], token_endpoint_auth_method: 'none' }, env), 'invalid_redirect_uri');
    expect(body.error_description).toContain('loopback-only');
    expect((await register({ redirect_uris: ['http://127.0.0.1/cb', 'com.example.app:/cb'], token_endpoint_auth_method: 'none' }, env)).status).toBe(201);
  });

  it('takes JSON only', async () => {
    const r = await call('/auth/oauth/register', { form: { redirect_uris: 'https://app.example.org/cb' }, env: open });
    expect(r.status).toBe(400);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_request');
  });

  it('is rate-limited per IP on its own action (register_client), 429 once over the limit, storing nothing more', async () => {
    const keys: string[] = [];
    const limiter = { limit: async ({ key }: { key: string }) => (keys.push(key), { success: keys.length <= 2 }) };
    const env = makeEnv({ DYNAMIC_CLIENT_REGISTRATION: 'open', RATE_LIMITER_REGISTER_CLIENT: limiter });
    const json = { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' };
    const ip = { 'cf-connecting-ip': '198.51.100.77' };
    expect((await register(json, env, ip)).status).toBe(201);
    expect((await register(json, env, ip)).status).toBe(201);
    const before = await countRows('oauth_clients');
    const limited = await register(json, env, ip);
    expect(limited.status).toBe(429);
    expect((await limited.json<{ error: string }>()).error).toBe('rate_limited');
    expect(await countRows('oauth_clients')).toBe(before);
    expect(keys).toEqual(Array(3).fill('register_client:198.51.100.77'));
  });
});
