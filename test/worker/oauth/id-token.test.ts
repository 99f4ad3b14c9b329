/**
 * ID tokens from the token endpoint, checked as a relying party checks them: with jose,
 * against the gateway's published JWKS (OpenID Connect Core §3.1.3.7).
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as base64url from 'jose/base64url';
import { describe, expect, it } from 'vitest';
import { generateSigningJwk } from '../../../src/keys/keyring';
import { call, makeEnv, PUBLIC_URL, testKey, type TestEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { exchange, grantRows, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';

async function jwks(env?: TestEnv) {
  return createLocalJWKSet(await (await call('/.well-known/jwks.json', { env })).json<JSONWebKeySet>());
}

/** at_hash as a relying party computes it: the left half of SHA-256 of the access token. */
async function atHash(accessToken: string) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken)));
  return base64url.encode(digest.slice(0, 16));
}

describe('the ID token', () => {
  it('verifies against the JWKS (ES256, typ JWT) and carries iss, sub, aud, azp, auth_time, amr, nonce, at_hash, sid and, for the email scope, the address', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const code = await storeCode(s.user.id, s.sessionId, client, { scope: 'openid email', nonce: 'abc-123' });
    const body = await (await exchange(client, secret, code)).json<GrantTokenResponse>();
    const { payload, protectedHeader } = await jwtVerify(body.id_token!, await jwks(), { issuer: PUBLIC_URL, audience: client.id, algorithms: ['ES256'], typ: 'JWT' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      iss: PUBLIC_URL,
      sub: s.user.id,
      aud: client.id,
      azp: client.id,
      auth_time: decodeJwt(s.access_token).auth_time,
      amr: ['pwd'],
      nonce: 'abc-123',
      sid: s.sessionId,
      email: s.user.email,
      email_verified: true,
    });
    expect(payload.at_hash).toBe(await atHash(body.access_token));
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it('has no nonce when the request had none, and no address without the email scope', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const body = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid', nonce: null }))).json<GrantTokenResponse>();
    const { payload } = await jwtVerify(body.id_token!, await jwks(), { issuer: PUBLIC_URL, audience: client.id });
    expect(payload.nonce).toBeUndefined();
    expect(payload.email).toBeUndefined();
    expect(payload.email_verified).toBeUndefined();
  });

  it('is signed with an ES256 key of the keyring when the active key is EdDSA', async () => {
    const env = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk('EdDSA'), testKey] }) });
    const { client, secret } = await seedClient();
    const s = await signedInSession({}, env);
    const body = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid' }), {}, env)).json<GrantTokenResponse>();
    expect(decodeProtectedHeader(body.id_token!)).toMatchObject({ alg: 'ES256', kid: testKey.kid });
    await jwtVerify(body.id_token!, await jwks(env), { issuer: PUBLIC_URL, audience: client.id });
  });

  it('a keyring without an ES256 key cannot serve openid: configuration_error, and a plain OAuth grant still works', async () => {
    const env = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk('EdDSA')] }) });
    const { client, secret } = await seedClient();
    const s = await signedInSession({}, env);
    const r = await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid' }), {}, env);
    expect(r.status).toBe(500);
    expect(await r.json()).toEqual({ error: 'configuration_error', error_description: expect.stringContaining('ES256') });
    // Nothing is left behind: the grant the code created is ended.
    expect((await grantRows(s.user.id)).every((g) => g.revoked_at !== null)).toBe(true);
    const plain = await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'profile' }), {}, env);
    expect(plain.status).toBe(200);
  });

  it('a refresh after SIGNING_KEYS lost its ES256 key rotates and answers without an ID token', async () => {
    const { client, secret } = await seedClient();
    const s = await signedInSession();
    const first = await (await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client, { scope: 'openid offline_access' }))).json<GrantTokenResponse>();
    const env = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk('EdDSA')] }) });
    const r = await call('/auth/token', { env, form: { grant_type: 'refresh_token', refresh_token: first.refresh_token! }, headers: { authorization: `Basic ${btoa(`${client.id}:${secret}`)}` } });
    expect(r.status, await r.clone().text()).toBe(200);
    const body = await r.json<GrantTokenResponse>();
    expect(body.id_token).toBeUndefined();
    expect(body.refresh_token).toBeDefined();
  });
});
