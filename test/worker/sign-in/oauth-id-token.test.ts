/**
 * ID token verification: every way an ID token can be wrong ends in a refusal page and no
 * session. The fake provider signs properly and then lets each test spoil one thing.
 */
import { env } from 'cloudflare:test';
import { generateKeyPair } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, setCookies, stateSnapshot, type TestEnv } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { signIn } from '../support/oauth-helpers';

let idp: FakeOidcProvider;
let e: TestEnv;

beforeAll(async () => {
  installFakeNetwork();
  idp = await FakeOidcProvider.create();
  e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
});

afterEach(() => {
  idp.tamper = () => {};
  idp.signWith = null;
});

let n = 0;
/** Refused with no state change, and the audit trail names `reason` (so it was refused for that). */
async function refused(reason: string, status = 400) {
  n += 1;
  idp.user = { sub: `idt-${n}-${Date.now()}`, email: `idt-${n}-${Date.now()}@example.com`, email_verified: true };
  const before = await stateSnapshot();
  const r = await signIn('oidc', idp, e);
  expect(r.status).toBe(status);
  expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  expect(await stateSnapshot()).toEqual(before);
  const event = await env.DB.prepare("SELECT detail FROM auth_events WHERE event = 'oauth_login' ORDER BY id DESC LIMIT 1").first<{ detail: string }>();
  expect(event?.detail).toContain(reason);
  return r.text();
}

describe('ID token verification', () => {
  it('accepts a correct token (control)', async () => {
    idp.user = { sub: `idt-ok-${Date.now()}`, email: `idt-ok-${Date.now()}@example.com`, email_verified: true };
    expect((await signIn('oidc', idp, e)).status).toBe(303);
  });

  it('refuses the wrong audience', async () => {
    idp.tamper = (claims) => {
      claims.aud = 'someone-else';
    };
    expect(await refused('unexpected \\"aud\\"')).toContain('did not confirm');
  });

  it('refuses several audiences when azp does not name us', async () => {
    idp.tamper = (claims) => {
      claims.aud = [idp.clientId, 'someone-else'];
      claims.azp = 'someone-else';
    };
    await refused('azp does not name us');
  });

  it('refuses the wrong nonce, and a missing one', async () => {
    idp.tamper = (claims) => {
      claims.nonce = 'not-the-nonce-we-sent';
    };
    await refused('nonce mismatch');
    idp.tamper = (claims) => {
      delete claims.nonce;
    };
    await refused('nonce mismatch');
  });

  it('refuses another issuer', async () => {
    idp.tamper = (claims) => {
      claims.iss = 'https://evil.example.test';
    };
    await refused('unexpected \\"iss\\"');
  });

  it('refuses an expired token', async () => {
    idp.tamper = (claims) => {
      claims.iat = Math.floor(Date.now() / 1000) - 7200;
      claims.exp = Math.floor(Date.now() / 1000) - 3600;
    };
    await refused('ERR_JWT_EXPIRED');
  });

  it('refuses a signature by a key the provider does not publish', async () => {
    idp.signWith = (await generateKeyPair('RS256')).privateKey;
    await refused('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('refuses HS256 signed with the client secret (algorithm allow-list)', async () => {
    idp.tamper = (_claims, header) => {
      header.alg = 'HS256';
    };
    idp.signWith = new TextEncoder().encode(idp.clientSecret) as unknown as CryptoKey;
    await refused('ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it('refuses a token response without an ID token (502)', async () => {
    idp.omitIdToken = true;
    try {
      await refused('provider_bad_response', 502);
    } finally {
      idp.omitIdToken = false;
    }
  });
});
