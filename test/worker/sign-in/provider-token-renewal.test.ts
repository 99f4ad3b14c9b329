/**
 * Provider tokens: renewal by compare-and-set (a lost race never
 * clears the winner's rotated grant), stored tokens dropped only on `invalid_grant`, a sign-in
 * without a refresh token keeps the stored one, and the endpoint takes a bearer token only.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, makeEnv, type TestEnv } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';

const KEY = 'k'.repeat(20) + 'an-encryption-secret-for-tests';

beforeAll(() => {
  installFakeNetwork();
});

let n = 0;

/** A fresh provider (its own refresh-token state) and a user signed in through it. */
async function signedIn(ttl = 1) {
  n += 1;
  const idp = await FakeOidcProvider.create();
  const e: TestEnv = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, STORE_PROVIDER_TOKENS: 'true', TOKEN_ENCRYPTION_KEY: KEY });
  idp.accessTokenTtl = ttl;
  idp.user = { sub: `hpt-${n}-${Date.now()}`, email: `hpt-${n}-${Date.now()}@example.com`, email_verified: true };
  const r = await signIn('oidc', idp, e);
  expect(r.status).toBe(303);
  idp.accessTokenTtl = 3600;
  return { idp, e, access: sessionCookies(r).access, cookies: sessionCookies(r), sub: idp.user.sub };
}

const stored = (sub: string) =>
  env.DB.prepare("SELECT tokens_encrypted FROM identities WHERE provider = 'oidc' AND subject = ?").bind(sub).first<string | null>('tokens_encrypted');

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

describe('provider-token renewal', () => {
  it('two concurrent renewals at a rotating provider: the loser neither clears nor overwrites the winner’s grant', async () => {
    const { idp, e, access, sub } = await signedIn();
    idp.rotateRefresh = true;
    idp.holdRefresh = true;
    const first = call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
    const second = call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
    // Both have read the same stored grant and are at the provider now.
    await until(() => idp.heldRefreshes.length === 2);
    idp.heldRefreshes[0]!();
    const winner = await Promise.race([first, second]);
    expect(winner.status).toBe(200);
    const won = ((await winner.json()) as { access_token: string }).access_token;
    const afterWinner = await stored(sub);
    idp.heldRefreshes[1]!(); // the loser presents the rotated-away refresh token: invalid_grant
    const [a, b] = await Promise.all([first, second]);
    const loser = a === winner ? b : a;
    expect(loser.status).toBe(200);
    expect(((await loser.json()) as { access_token: string }).access_token).toBe(won);
    expect(await stored(sub)).toBe(afterWinner);
    idp.holdRefresh = false;
    const calls = idp.refreshCalls;
    const again = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { access_token: string }).access_token).toBe(won);
    expect(idp.refreshCalls).toBe(calls);
  });

  for (const refusal of [
    { error: 'invalid_client', status: 401 },
    { error: 'invalid_scope', status: 400 },
  ] as const) {
    it(`a renewal refused with ${refusal.error} answers 502 and keeps the stored grant`, async () => {
      const { idp, e, access, sub } = await signedIn();
      const before = await stored(sub);
      idp.refreshError = refusal;
      const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
      expect(r.status).toBe(502);
      expect(await r.json()).toMatchObject({ error: 'bad_gateway' });
      expect(await stored(sub)).toBe(before);
      idp.refreshError = null;
      const fixed = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
      expect(fixed.status).toBe(200);
      expect(((await fixed.json()) as { access_token: string }).access_token).toMatch(/^renewed-/);
    });
  }

  it('invalid_grant still drops the stored tokens (403)', async () => {
    const { idp, e, access, sub } = await signedIn();
    idp.refuseRefresh = true;
    const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(access) });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden' });
    expect(await stored(sub)).toBeNull();
  });

  it('a later sign-in without a refresh token keeps the stored one', async () => {
    const { idp, e, sub } = await signedIn();
    idp.omitRefreshToken = true;
    idp.accessTokenTtl = 1;
    const again = await signIn('oidc', idp, e);
    expect(again.status).toBe(303);
    idp.accessTokenTtl = 3600;
    expect(await stored(sub)).not.toBeNull();
    const calls = idp.refreshCalls;
    const r = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(sessionCookies(again).access) });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { access_token: string }).access_token).toMatch(/^renewed-/);
    expect(idp.refreshCalls).toBe(calls + 1);
  });
});

describe('provider tokens need a bearer token', () => {
  it('refuses the session cookie with 401 and a clear message', async () => {
    const { e, cookies } = await signedIn(3600);
    const r = await call('/auth/provider-tokens/oidc', { env: e, cookies: { '__Host-gatehouse': cookies.access } });
    expect(r.status).toBe(401);
    const body = (await r.json()) as { error: string; error_description: string };
    expect(body.error).toBe('invalid_token');
    expect(body.error_description).toContain('Bearer');
    expect(body.error_description).toContain('session cookie');
    const ok = await call('/auth/provider-tokens/oidc', { env: e, headers: bearer(cookies.access) });
    expect(ok.status).toBe(200);
  });
});
