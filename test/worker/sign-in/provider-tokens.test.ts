/**
 * STORE_PROVIDER_TOKENS: provider tokens kept AES-GCM-encrypted in D1 and handed out through
 * `GET /auth/provider-tokens/:provider`, renewed with the provider refresh token when expired.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, makeEnv, type TestEnv } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';

const KEY = 'k'.repeat(20) + 'an-encryption-secret-for-tests';

let idp: FakeOidcProvider;
let e: TestEnv;

beforeAll(async () => {
  installFakeNetwork();
  idp = await FakeOidcProvider.create();
  e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, STORE_PROVIDER_TOKENS: 'true', TOKEN_ENCRYPTION_KEY: KEY });
});

let n = 0;
async function signedIn(ttl = 3600) {
  n += 1;
  idp.accessTokenTtl = ttl;
  idp.user = { sub: `pt-${n}-${Date.now()}`, email: `pt-${n}-${Date.now()}@example.com`, email_verified: true };
  const from = requests.length;
  const r = await signIn('oidc', idp, e);
  expect(r.status).toBe(303);
  const tokenAnswer = requests.slice(from).find((q) => q.url.endsWith('/token'));
  expect(tokenAnswer).toBeDefined();
  return { access: sessionCookies(r).access, sub: idp.user.sub };
}

describe('provider tokens', () => {
  it('stores them encrypted, never in clear, and hands out the access token to its owner', async () => {
    const { access, sub } = await signedIn();
    const row = await env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(sub).first<{ tokens_encrypted: string }>();
    expect(row?.tokens_encrypted.split('.')).toHaveLength(5);
    expect(row?.tokens_encrypted).not.toContain('refresh-1');
    const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ provider: 'oidc', token_type: 'Bearer', scope: 'openid email profile offline_access' });
    expect(body.access_token).toMatch(/^at-/);
    expect(body).not.toHaveProperty('refresh_token');
  });

  it('renews an expired access token with the refresh token and stores the new one', async () => {
    const { access, sub } = await signedIn(1);
    idp.accessTokenTtl = 3600; // the renewed token lives an hour
    const before = idp.refreshCalls;
    const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { access_token: string };
    expect(body.access_token).toMatch(/^renewed-/);
    expect(idp.refreshCalls).toBe(before + 1);
    const again = (await (await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) })).json()) as { access_token: string };
    expect(again.access_token).toBe(body.access_token);
    expect(idp.refreshCalls).toBe(before + 1);
    const row = await env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(sub).first<{ tokens_encrypted: string }>();
    expect(row?.tokens_encrypted).not.toContain('renewed-');
  });

  it('drops the stored tokens when the provider refuses the refresh token (403), and says 503 when it is down', async () => {
    const down = await signedIn(1);
    idp.faults = { token: 'down' };
    try {
      const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(down.access) });
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ error: 'unavailable' });
    } finally {
      idp.faults = {};
    }
    const row = await env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(down.sub).first<{ tokens_encrypted: string | null }>();
    expect(row?.tokens_encrypted).not.toBeNull(); // a fault keeps them for next time

    idp.refuseRefresh = true;
    try {
      const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(down.access) });
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    } finally {
      idp.refuseRefresh = false;
    }
    const after = await env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(down.sub).first<{ tokens_encrypted: string | null }>();
    expect(after?.tokens_encrypted).toBeNull();
    expect((await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(down.access) })).status).toBe(404);
  });

  it('a ciphertext moved to another identity does not decrypt for it', async () => {
    const a = await signedIn();
    const b = await signedIn();
    const rowA = await env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(a.sub).first<{ tokens_encrypted: string }>();
    await env.DB.prepare("UPDATE identities SET tokens_encrypted = ? WHERE provider = 'oidc' AND subject = ?").bind(rowA!.tokens_encrypted, b.sub).run();
    const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(b.access) });
    expect(r.status).toBe(404);
  });

  it('needs a signed-in caller, and answers 404 when tokens are not kept', async () => {
    expect((await call('/auth/provider-tokens/oidc', { env: e })).status).toBe(401);
    const off = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    idp.user = { sub: `pt-off-${Date.now()}`, email: `pt-off-${Date.now()}@example.com`, email_verified: true };
    const r = await signIn('oidc', idp, off);
    const row = await env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(idp.user.sub).first<{ tokens_encrypted: string | null }>();
    expect(row?.tokens_encrypted).toBeNull();
    const tokens = await call('/auth/provider-tokens/oidc', { env: off, headers: bearer(sessionCookies(r).access) });
    expect(tokens.status).toBe(404);
    expect(await tokens.json()).toMatchObject({ error: 'not_found' });
  });
});
