/**
 * The client-credentials grant at `POST /auth/token`: a service's own access token (no user, no
 * refresh token) for one audience it is allowed, with scopes it is allowed, every refusal with
 * its RFC 6749 / RFC 8707 code, and a rotated secret that counts only for its overlap.
 */
import { env } from 'cloudflare:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { verifyGrantToken } from '../../../src/tokens/grant-token';
import { keyringFromJwks } from '../../../src/keys/keyring';
import type { OAuthClient } from '../../../src/storage/oauth-clients';
import { sha256 } from '../../../src/util/random';
import { call, makeEnv, PUBLIC_URL, testKey } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';

const API = 'https://gate.example.com/api';
const REPORTS = 'https://reports.example.com';
const e = makeEnv({ ACCESS_TOKEN_TTL: '300' });

/** A service client: confidential, the client-credentials grant, two scopes, one audience. */
function service(overrides: Partial<OAuthClient> = {}) {
  return seedClient({
    name: 'Nightly export',
    grantTypes: ['client_credentials'],
    redirectUris: [],
    postLogoutRedirectUris: [],
    allowedScopes: ['reports:read', 'reports:write', 'openid', 'offline_access'],
    allowedAudiences: [API],
    ...overrides,
  });
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}` });

function token(form: Record<string, string>, headers: Record<string, string> = {}) {
  return call('/auth/token', { env: e, form, headers });
}

async function refusal(r: Response) {
  return { status: r.status, body: (await r.json()) as { error: string; error_description: string } };
}

async function events(clientId: string) {
  const { results } = await env.DB.prepare("SELECT event, outcome, user_id, detail FROM auth_events WHERE event = 'service_token_issued' AND detail LIKE ?")
    .bind(`%${clientId}%`)
    .all<{ event: string; outcome: string; user_id: string | null; detail: string }>();
  return results;
}

describe('a service gets a token of its own', () => {
  it('sub is the client, svc, the service session of its epoch, no grant, no user claims, no refresh token; audited', async () => {
    const { client, secret } = await service();
    const r = await token({ grant_type: 'client_credentials' }, basic(client.id, secret));
    expect(r.status, await r.clone().text()).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 300, scope: 'reports:read reports:write' });
    const jwt = body.access_token as string;
    expect(decodeProtectedHeader(jwt).typ).toBe('at+jwt');
    const claims = decodeJwt(jwt);
    expect(claims).toEqual({
      iss: PUBLIC_URL,
      aud: API,
      sub: client.id,
      client_id: client.id,
      svc: true,
      sid: `svc:${client.id}:${client.tokenEpoch}`,
      cep: client.tokenEpoch,
      scope: 'reports:read reports:write',
      jti: expect.any(String),
      iat: expect.any(Number),
      exp: (claims.iat as number) + 300,
    });
    // The foundation's verifier takes it for its audience.
    const ring = await keyringFromJwks({ keys: [testKey] });
    expect((await verifyGrantToken(ring, PUBLIC_URL, [API], jwt)).svc).toBe(true);
    const audit = await events(client.id);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ outcome: 'success', user_id: null });
    expect(JSON.parse(audit[0]!.detail)).toMatchObject({ endpoint: 'oauth_token_client_credentials', client_id: client.id, aud: API });
  });

  it('client_secret_post works as Basic does', async () => {
    const { client, secret } = await service({ authMethod: 'client_secret_post' });
    const r = await token({ grant_type: 'client_credentials', client_id: client.id, client_secret: secret });
    expect(r.status, await r.clone().text()).toBe(200);
  });

  it('a scope asked for is granted when allowed; several at once; the order and repeats do not matter', async () => {
    const { client, secret } = await service();
    const one = await token({ grant_type: 'client_credentials', scope: 'reports:read' }, basic(client.id, secret));
    expect(((await one.json()) as { scope: string }).scope).toBe('reports:read');
    const two = await token({ grant_type: 'client_credentials', scope: 'reports:write  reports:read reports:write' }, basic(client.id, secret));
    expect(decodeJwt(((await two.json()) as { access_token: string }).access_token).scope).toBe('reports:write reports:read');
  });

  it('resource (RFC 8707) or audience picks one of several allowed audiences', async () => {
    const { client, secret } = await service({ allowedAudiences: [API, REPORTS] });
    for (const form of [{ resource: REPORTS }, { audience: REPORTS }, { resource: REPORTS, audience: REPORTS }] as Record<string, string>[]) {
      const r = await token({ grant_type: 'client_credentials', ...form }, basic(client.id, secret));
      expect(r.status, JSON.stringify(form)).toBe(200);
      expect(decodeJwt(((await r.json()) as { access_token: string }).access_token).aud).toBe(REPORTS);
    }
  });
});

describe('refusals, each with its own code', () => {
  it('invalid_client (401): wrong secret, unknown client, disabled client, no authentication', async () => {
    const { client, secret } = await service();
    const { client: disabled, secret: disabledSecret } = await service({ disabledAt: 1 });
    for (const [label, headers, form] of [
      ['wrong secret', basic(client.id, `${secret}x`), {}],
      ['unknown client', basic('cli_nobody', secret), {}],
      ['disabled client', basic(disabled.id, disabledSecret), {}],
      ['no authentication', {}, {}],
      ['a client id alone (as a public client)', {}, { client_id: client.id }],
    ] as const) {
      const r = await token({ grant_type: 'client_credentials', ...form }, headers);
      expect(await refusal(r), label).toEqual({ status: 401, body: { error: 'invalid_client', error_description: expect.any(String) } });
    }
    expect(await events(client.id)).toEqual([]);
  });

  it('unauthorized_client (400): a client not registered for the grant; a client allowed no audience', async () => {
    const { client, secret } = await service({ grantTypes: ['authorization_code', 'refresh_token'] });
    expect(await refusal(await token({ grant_type: 'client_credentials' }, basic(client.id, secret)))).toEqual({ status: 400, body: { error: 'unauthorized_client', error_description: expect.any(String) } });
    const { client: nowhere, secret: nowhereSecret } = await service({ allowedAudiences: [] });
    expect(await refusal(await token({ grant_type: 'client_credentials', resource: API }, basic(nowhere.id, nowhereSecret)))).toEqual({ status: 400, body: { error: 'unauthorized_client', error_description: expect.any(String) } });
    expect(await events(client.id)).toEqual([]);
  });

  it('invalid_scope (400): a scope not allowed, openid and offline_access (a user\'s), a malformed one', async () => {
    const { client, secret } = await service();
    for (const scope of ['admin', 'reports:read admin', 'openid', 'offline_access', 'reports:read openid', 'bad"scope']) {
      const r = await token({ grant_type: 'client_credentials', scope }, basic(client.id, secret));
      expect(await refusal(r), scope).toEqual({ status: 400, body: { error: 'invalid_scope', error_description: expect.any(String) } });
    }
    expect(await events(client.id)).toEqual([]);
  });

  it('invalid_target (400): an audience not allowed, two different ones, none named among several', async () => {
    const { client, secret } = await service({ allowedAudiences: [API, REPORTS] });
    for (const form of [{ resource: 'https://elsewhere.example.com' }, { audience: `${API}/` }, { resource: API, audience: REPORTS }, {}] as Record<string, string>[]) {
      const r = await token({ grant_type: 'client_credentials', ...form }, basic(client.id, secret));
      expect(await refusal(r), JSON.stringify(form)).toEqual({ status: 400, body: { error: 'invalid_target', error_description: expect.any(String) } });
    }
  });

  it('unsupported_grant_type (400) for a grant this endpoint does not know; invalid_request without one', async () => {
    const { client, secret } = await service();
    expect(await refusal(await token({ grant_type: 'password' }, basic(client.id, secret)))).toEqual({ status: 400, body: { error: 'unsupported_grant_type', error_description: expect.any(String) } });
    expect((await refusal(await token({}, basic(client.id, secret)))).body.error).toBe('invalid_request');
  });
});

describe('a rotated secret', () => {
  it('both secrets work during the overlap; after it only the new one', async () => {
    const old = 'old-secret-'.padEnd(43, 'o');
    const now = Math.floor(Date.now() / 1000);
    const { client, secret } = await service({ previousSecretHash: await sha256(old), previousSecretExpiresAt: now + 600 });
    expect((await token({ grant_type: 'client_credentials' }, basic(client.id, secret))).status).toBe(200);
    expect((await token({ grant_type: 'client_credentials' }, basic(client.id, old))).status).toBe(200);

    await env.DB.prepare('UPDATE oauth_clients SET previous_secret_expires_at = ? WHERE id = ?').bind(now - 1, client.id).run();
    expect((await token({ grant_type: 'client_credentials' }, basic(client.id, secret))).status).toBe(200);
    expect(await refusal(await token({ grant_type: 'client_credentials' }, basic(client.id, old)))).toEqual({ status: 401, body: { error: 'invalid_client', error_description: expect.any(String) } });
  });
});
