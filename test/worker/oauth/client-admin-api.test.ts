/**
 * `/auth/admin/clients`: only admins register and manage clients; a secret is shown once and
 * kept only as its hash; every bad field is named; a rotated secret keeps working for the
 * overlap chosen and not after; disabling refuses the client at once and revokes its tokens'
 * epoch in KV, enabling accepts it again.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, bearer, call, countRows, makeEnv, registerUser, type TokenResponse } from '../support/helpers';
import { authenticateAt, basic } from '../support/client-auth';
import { clearRevocationCache, isSessionRevoked } from '../../../src/storage/revocation';
import { grantRevocationKeys } from '../../../src/tokens/grant-token';
import { sha256 } from '../../../src/util/random';

async function makeAdmin(): Promise<TokenResponse> {
  const admin = await registerUser();
  await baseEnv.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
  return admin;
}

const admin = await makeAdmin();

const asAdmin = (path: string, init: { method?: string; json?: unknown } = {}) =>
  call(`/auth/admin${path}`, { method: init.method ?? (init.json ? 'POST' : 'GET'), json: init.json, headers: bearer(admin.access_token) });

interface ClientAnswer {
  client: Record<string, unknown> & { client_id: string };
  client_secret?: string;
}

async function create(json: Record<string, unknown>): Promise<ClientAnswer> {
  const r = await asAdmin('/clients', { json });
  expect(r.status, await r.clone().text()).toBe(201);
  return r.json();
}

const webApp = { name: 'Billing', redirect_uris: ['https://billing.example.org/callback'] };

async function row(id: string) {
  return baseEnv.DB.prepare('SELECT * FROM oauth_clients WHERE id = ?').bind(id).first<Record<string, unknown>>();
}

async function audit(event: string) {
  const { results } = await baseEnv.DB.prepare('SELECT user_id, detail FROM auth_events WHERE event = ?').bind(event).all<{ user_id: string; detail: string }>();
  return results.map((r) => ({ user_id: r.user_id, ...(JSON.parse(r.detail) as Record<string, unknown>) }));
}

describe('client administration: who gets in', () => {
  it('refuses a signed-in non-admin with 403 and no token with 401 on every endpoint, registering nothing', async () => {
    const someone = await registerUser();
    const { client } = await create(webApp);
    const before = await countRows('oauth_clients');
    const attempts: [string, string, unknown?][] = [
      ['POST', '/clients', webApp],
      ['GET', '/clients'],
      ['GET', `/clients/${client.client_id}`],
      ['PATCH', `/clients/${client.client_id}`, { name: 'Mine now' }],
      ['POST', `/clients/${client.client_id}/rotate-secret`, { overlap_seconds: 0 }],
      ['POST', `/clients/${client.client_id}/disable`],
      ['POST', `/clients/${client.client_id}/enable`],
    ];
    for (const [method, path, json] of attempts) {
      const r = await call(`/auth/admin${path}`, { method, json, headers: bearer(someone.access_token) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect((await r.json<{ error: string }>()).error).toBe('forbidden');
      expect((await call(`/auth/admin${path}`, { method, json })).status, `anonymous ${method} ${path}`).toBe(401);
    }
    expect(await countRows('oauth_clients')).toBe(before);
    expect(await row(client.client_id)).toMatchObject({ name: 'Billing', disabled_at: null });
  });
});

describe('registering a client', () => {
  it('answers a confidential client with its secret once; D1 keeps only the SHA-256; lists and views never show it', async () => {
    const answer = await create({ ...webApp, allowed_scopes: ['openid', 'email'] });
    const secret = answer.client_secret!;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    expect(answer.client).toMatchObject({
      name: 'Billing',
      kind: 'confidential',
      token_endpoint_auth_method: 'client_secret_basic',
      has_secret: true,
      redirect_uris: webApp.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      allowed_scopes: ['openid', 'email'],
      first_party: false,
      source: 'admin',
      disabled: false,
    });
    expect(answer.client.client_id).toMatch(/^cli_/);
    const stored = await row(answer.client.client_id);
    expect(stored!.secret_hash).toBe(await sha256(secret));
    expect(JSON.stringify(stored)).not.toContain(secret);
    for (const r of [await asAdmin('/clients'), await asAdmin(`/clients/${answer.client.client_id}`)]) {
      const text = await r.text();
      expect(r.status).toBe(200);
      expect(text).toContain(answer.client.client_id);
      expect(text).not.toContain(secret);
      expect(text).not.toContain(String(stored!.secret_hash));
      expect(text).not.toMatch(/client_secret"|secret_hash/);
    }
    expect(await audit('admin_client_created')).toContainEqual(expect.objectContaining({ user_id: admin.user.id, admin: admin.user.id, client_id: answer.client.client_id }));
    // The secret authenticates the client; anything else does not.
    expect((await authenticateAt({}, { authorization: basic(answer.client.client_id, secret) })).status).toBe(200);
    expect((await authenticateAt({ client_id: answer.client.client_id, client_secret: secret })).status).toBe(200);
    const wrong = await authenticateAt({}, { authorization: basic(answer.client.client_id, `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`) });
    expect(wrong.status).toBe(401);
    expect((await wrong.json<{ error: string }>()).error).toBe('invalid_client');
  });

  it('a public client authenticates with none and gets no secret; loopback, [::1], localhost and a private-use scheme are accepted for it', async () => {
    const answer = await create({
      name: 'Desktop',
      kind: 'public',
      redirect_uris: ['http://127.0.0.1:8123/cb', 'http://[::1]/cb', 'http://localhost:9000/cb', 'com.example.desktop:/oauth2redirect'],
    });
    expect(answer.client_secret).toBeUndefined();
    expect(answer.client).toMatchObject({ kind: 'public', token_endpoint_auth_method: 'none', has_secret: false });
    expect((await row(answer.client.client_id))!.secret_hash).toBeNull();
    expect((await authenticateAt({ client_id: answer.client.client_id })).status).toBe(200);
    expect((await authenticateAt({ client_id: answer.client.client_id, client_secret: 'anything' })).status).toBe(401);
  });

  it('names every bad field at once, with invalid_redirect_uri when a redirect URI is among them', async () => {
    const r = await asAdmin('/clients', {
      json: {
        name: 'Bad',
        redirect_uris: [
          'https://app.example.org/cb#frag',
          'http://app.example.org/cb',
          'https://*.example.org/cb',
          '/relative/cb',
          'com.example.app:/cb',
          'https://user:pw@app.example.org/cb',
        ],
        allowed_scopes: ['openid', 'admin'],
        allowed_audiences: ['not a url', 'https://gate.example.com'],
        grant_types: ['authorization_code', 'password'],
      },
    });
    expect(r.status).toBe(400);
    const body = await r.json<{ error: string; error_description: string; invalid_fields: Record<string, string> }>();
    expect(body.error).toBe('invalid_client_metadata'); // the schema's problems come first: grant type and scope
    expect(Object.keys(body.invalid_fields).sort()).toEqual(['allowed_scopes.1', 'grant_types.1'].sort());
    const uris = await asAdmin('/clients', {
      json: {
        name: 'Bad',
        redirect_uris: ['https://app.example.org/cb#frag', 'http://app.example.org/cb', 'https://*.example.org/cb', '/relative/cb', 'com.example.app:/cb', 'https://user:pw@app.example.org/cb'],
        allowed_audiences: ['not a url', 'https://gate.example.com'],
      },
    });
    expect(uris.status).toBe(400);
    const named = await uris.json<{ error: string; error_description: string; invalid_fields: Record<string, string> }>();
    expect(named.error).toBe('invalid_redirect_uri');
    expect(named.invalid_fields).toEqual({
      'redirect_uris.0': 'must not have a fragment',
      'redirect_uris.1': 'must use https (http only on 127.0.0.1, [::1] or localhost)',
      'redirect_uris.2': expect.stringContaining('wildcard'),
      'redirect_uris.3': 'must be an absolute URI',
      'redirect_uris.4': 'may use a private-use scheme only for a public (native) client',
      'redirect_uris.5': 'must not contain a user name or password',
      'allowed_audiences.0': expect.stringContaining('absolute https URL'),
      'allowed_audiences.1': expect.stringContaining("gateway's or an app host's own origin"),
    });
    for (const field of Object.keys(named.invalid_fields)) expect(named.error_description).toContain(`"${field}"`);
  });

  it('holds the rules between kind, method, secret, keys and grants', async () => {
    const cases: [Record<string, unknown>, string[]][] = [
      [{ kind: 'public', token_endpoint_auth_method: 'client_secret_basic' }, ['token_endpoint_auth_method']],
      [{ kind: 'confidential', token_endpoint_auth_method: 'none' }, ['token_endpoint_auth_method']],
      [{ kind: 'public', grant_types: ['client_credentials'] }, ['grant_types']],
      [{ token_endpoint_auth_method: 'private_key_jwt' }, ['jwks']],
      [{ jwks_uri: 'https://app.example.org/jwks' }, ['jwks_uri']],
      [{ client_secret: 'chosen-by-me' }, ['client_secret']],
      [{ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, ['jwks.keys.0']],
      [{ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'private' }] } }, ['jwks.keys.0']],
      [{ redirect_uris: [] }, ['redirect_uris']],
      [{ colour: 'blue' }, ['colour']],
    ];
    for (const [extra, fields] of cases) {
      const r = await asAdmin('/clients', { json: { ...webApp, ...extra } });
      expect(r.status, JSON.stringify(extra)).toBe(400);
      const body = await r.json<{ error: string; invalid_fields: Record<string, string> }>();
      expect(body.error, JSON.stringify(extra)).toBe('invalid_client_metadata');
      expect(Object.keys(body.invalid_fields), JSON.stringify(extra)).toEqual(fields);
    }
    const service = await create({ name: 'Nightly export', grant_types: ['client_credentials'], allowed_audiences: ['https://api.example.org'] });
    expect(service.client).toMatchObject({ grant_types: ['client_credentials'], allowed_audiences: ['https://api.example.org'], redirect_uris: [] });
  });
});

describe('audiences a client may be allowed', () => {
  it("never the gateway's or an app host's own origin (what session tokens carry), a wildcard host's names included; paths under them are resources", async () => {
    const env = makeEnv({
      ROUTES: JSON.stringify([
        { host: 'wiki.example.com', path: '/', origin: 'https://wiki-origin.example.net', auth: 'required' },
        { host: '*.apps.example.com', path: '/', origin: 'https://apps-origin.example.net', auth: 'required' },
      ]),
    });
    const attempt = (allowed_audiences: string[]) =>
      call('/auth/admin/clients', { env, json: { name: 'Svc', grant_types: ['client_credentials'], allowed_audiences }, headers: bearer(admin.access_token) });
    for (const audience of ['https://gate.example.com/', 'https://wiki.example.com', 'https://crm.apps.example.com/']) {
      const r = await attempt([audience]);
      expect(r.status, audience).toBe(400);
      expect((await r.json<{ invalid_fields: Record<string, string> }>()).invalid_fields['allowed_audiences.0'], audience).toContain('own origin');
    }
    expect((await attempt(['https://wiki.example.com/api', 'https://crm.apps.example.com/mcp', 'https://api.example.net'])).status).toBe(201);
  });

  it('never one of the gateway\'s own endpoints (userinfo is for a user\'s token): a service token for it would reach where a person is expected', async () => {
    for (const audience of ['https://gate.example.com/auth/userinfo', 'https://gate.example.com/AUTH/userinfo', 'https://gate.example.com/auth', 'https://gate.example.com/auth/me']) {
      const r = await asAdmin('/clients', { json: { name: 'Svc', grant_types: ['client_credentials'], allowed_audiences: [audience] } });
      expect(r.status, audience).toBe(400);
      expect((await r.json<{ invalid_fields: Record<string, string> }>()).invalid_fields['allowed_audiences.0'], audience).toContain("gateway's own endpoints");
    }
    expect((await asAdmin('/clients', { json: { name: 'Svc', grant_types: ['client_credentials'], allowed_audiences: ['https://gate.example.com/authors'] } })).status).toBe(201);
  });
});

describe('changing a client', () => {
  it('changes metadata under the same rules, never the kind or method, and audits the fields', async () => {
    const { client, client_secret } = await create(webApp);
    const r = await asAdmin(`/clients/${client.client_id}`, { method: 'PATCH', json: { name: 'Billing 2', redirect_uris: ['https://billing.example.org/cb2'], first_party: true } });
    expect(r.status).toBe(200);
    expect((await r.json<ClientAnswer>()).client).toMatchObject({ name: 'Billing 2', redirect_uris: ['https://billing.example.org/cb2'], first_party: true });
    expect(await row(client.client_id)).toMatchObject({ name: 'Billing 2', redirect_uris: '["https://billing.example.org/cb2"]', first_party: 1 });
    expect(await audit('admin_client_updated')).toContainEqual(expect.objectContaining({ client_id: client.client_id, fields: ['name', 'redirect_uris', 'first_party'] }));
    const bad = await asAdmin(`/clients/${client.client_id}`, { method: 'PATCH', json: { kind: 'public', redirect_uris: ['http://evil.example/cb'] } });
    expect(bad.status).toBe(400);
    expect(Object.keys((await bad.json<{ invalid_fields: object }>()).invalid_fields)).toEqual(['kind']);
    const badUri = await asAdmin(`/clients/${client.client_id}`, { method: 'PATCH', json: { redirect_uris: ['http://evil.example/cb'] } });
    expect(badUri.status).toBe(400);
    expect((await badUri.json<{ error: string }>()).error).toBe('invalid_redirect_uri');
    expect(await row(client.client_id)).toMatchObject({ redirect_uris: '["https://billing.example.org/cb2"]', secret_hash: await sha256(client_secret!) });
    expect((await asAdmin('/clients/cli_nobody', { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);
  });
});

describe('changing the keys of a private_key_jwt client', () => {
  it('replaces its JWK Set by PATCH, refusing private key material', async () => {
    const key = (x: string) => ({ kty: 'OKP', crv: 'Ed25519', x });
    const { client } = await create({ name: 'Signer', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo')] }, grant_types: ['client_credentials'] });
    const bad = await asAdmin(`/clients/${client.client_id}`, { method: 'PATCH', json: { jwks: { keys: [{ ...key('x'), d: 'secret' }] } } });
    expect(bad.status).toBe(400);
    expect(Object.keys((await bad.json<{ invalid_fields: object }>()).invalid_fields)).toEqual(['jwks.keys.0']);
    const r = await asAdmin(`/clients/${client.client_id}`, { method: 'PATCH', json: { jwks: { keys: [key('new-key-x')] } } });
    expect(r.status).toBe(200);
    expect(JSON.parse(String((await row(client.client_id))!.jwks))).toEqual({ keys: [key('new-key-x')] });
    const none = await asAdmin(`/clients/${client.client_id}`, { method: 'PATCH', json: { jwks: null } });
    expect(Object.keys((await none.json<{ invalid_fields: object }>()).invalid_fields)).toEqual(['jwks']);
  });
});

describe('rotating a secret', () => {
  it('keeps the old secret working until the overlap ends, and not after; the new one works at once', async () => {
    const { client, client_secret: old } = await create(webApp);
    const r = await asAdmin(`/clients/${client.client_id}/rotate-secret`, { json: { overlap_seconds: 3600 } });
    expect(r.status).toBe(200);
    const rotated = await r.json<{ client_secret: string; previous_secret_expires_at: number }>();
    expect(rotated.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated.client_secret).not.toBe(old);
    expect(rotated.previous_secret_expires_at).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect(await row(client.client_id)).toMatchObject({ secret_hash: await sha256(rotated.client_secret), previous_secret_hash: await sha256(old!) });
    expect((await authenticateAt({}, { authorization: basic(client.client_id, rotated.client_secret) })).status).toBe(200);
    expect((await authenticateAt({}, { authorization: basic(client.client_id, old!) })).status).toBe(200);
    // The overlap ends (its stored end moved to the past): the old secret is refused, the new one still works.
    await baseEnv.DB.prepare('UPDATE oauth_clients SET previous_secret_expires_at = ? WHERE id = ?').bind(Math.floor(Date.now() / 1000) - 1, client.client_id).run();
    expect((await authenticateAt({}, { authorization: basic(client.client_id, old!) })).status).toBe(401);
    expect((await authenticateAt({}, { authorization: basic(client.client_id, rotated.client_secret) })).status).toBe(200);
    expect(await audit('admin_client_secret_rotated')).toContainEqual(expect.objectContaining({ admin: admin.user.id, client_id: client.client_id, overlap_seconds: 3600 }));
  });

  it('with no overlap the old secret stops at once; the overlap is bounded to 30 days; a client without a secret has none to rotate', async () => {
    const { client, client_secret: old } = await create(webApp);
    const r = await asAdmin(`/clients/${client.client_id}/rotate-secret`, { json: { overlap_seconds: 0 } });
    const { client_secret: fresh } = await r.json<{ client_secret: string }>();
    expect((await authenticateAt({}, { authorization: basic(client.client_id, old!) })).status).toBe(401);
    expect((await authenticateAt({}, { authorization: basic(client.client_id, fresh) })).status).toBe(200);
    for (const overlap of [30 * 86_400 + 1, -1, 1.5, '60']) {
      const bad = await asAdmin(`/clients/${client.client_id}/rotate-secret`, { json: { overlap_seconds: overlap } });
      expect(bad.status, String(overlap)).toBe(400);
      expect(await bad.text()).toContain('overlap_seconds');
    }
    const publicClient = await create({ name: 'SPA', kind: 'public', redirect_uris: ['https://spa.example.org/cb'] });
    const none = await asAdmin(`/clients/${publicClient.client.client_id}/rotate-secret`, { json: { overlap_seconds: 0 } });
    expect(none.status).toBe(409);
    expect((await none.json<{ error_description: string }>()).error_description).toContain('no secret to rotate');
  });
});

describe('disabling and enabling a client', () => {
  it('disabling refuses it at once, moves its token epoch and revokes the old epoch in KV; enabling accepts it again under the new epoch', async () => {
    const { client, client_secret: secret } = await create(webApp);
    const before = await row(client.client_id);
    const oldEpoch = String(before!.token_epoch);
    const r = await asAdmin(`/clients/${client.client_id}/disable`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect((await r.json<ClientAnswer>()).client).toMatchObject({ disabled: true });
    const after = await row(client.client_id);
    expect(after!.disabled_at).toEqual(expect.any(Number));
    expect(after!.token_epoch).not.toBe(oldEpoch);
    // Both keys of the old epoch are revoked, with an expiry covering a grant token's life.
    for (const key of [`sid:cli:${client.client_id}:${oldEpoch}`, `sid:svc:${client.client_id}:${oldEpoch}`]) {
      expect(await baseEnv.REVOKED.get(key), key).toBe('1');
    }
    const list = await baseEnv.REVOKED.list({ prefix: `sid:cli:${client.client_id}:` });
    expect(list.keys.map((k) => k.name)).toEqual([`sid:cli:${client.client_id}:${oldEpoch}`]);
    expect(list.keys[0]!.expiration! - Date.now() / 1000).toBeGreaterThan(600);
    // Another isolate (nothing cached here) reading KV: a grant token of the old epoch is revoked, one of the new is not.
    clearRevocationCache();
    const check = { cacheSeconds: 0, tokenExpiresAt: Math.floor(Date.now() / 1000) + 600 };
    const revoked = async (epoch: string) => {
      const answers = await Promise.all(grantRevocationKeys({ sid: 'ses_x', client_id: client.client_id, cep: epoch }).map((k) => isSessionRevoked(baseEnv.REVOKED, k, check)));
      return answers.some(Boolean);
    };
    expect(await revoked(oldEpoch)).toBe(true);
    expect(await revoked(String(after!.token_epoch))).toBe(false);
    const refused = await authenticateAt({}, { authorization: basic(client.client_id, secret!) });
    expect(refused.status).toBe(401);
    expect((await refused.json<{ error: string }>()).error).toBe('invalid_client');
    expect(await audit('admin_client_disabled')).toContainEqual(expect.objectContaining({ admin: admin.user.id, client_id: client.client_id }));

    const enabled = await asAdmin(`/clients/${client.client_id}/enable`, { method: 'POST' });
    expect(enabled.status).toBe(200);
    expect(await row(client.client_id)).toMatchObject({ disabled_at: null, token_epoch: after!.token_epoch });
    expect((await authenticateAt({}, { authorization: basic(client.client_id, secret!) })).status).toBe(200);
    expect(await audit('admin_client_enabled')).toContainEqual(expect.objectContaining({ client_id: client.client_id }));
  });

  it('an unknown client is 404 everywhere', async () => {
    for (const [method, path] of [['GET', ''], ['POST', '/disable'], ['POST', '/enable'], ['POST', '/rotate-secret']] as const) {
      const r = await asAdmin(`/clients/cli_missing${path}`, { method, json: path === '/rotate-secret' ? { overlap_seconds: 0 } : undefined });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
  });
});
