/**
 * private_key_jwt: a client proves itself with an assertion signed by a key of its registered
 * JWK Set, for this gateway, short-lived, used once; asymmetric algorithms only; and nothing
 * else (no secret) proves such a client.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../../src/auth/client-assertion';
import { randomId } from '../../../src/util/random';
import { authenticateAt, basic, TOKEN_ENDPOINT } from '../support/client-auth';
import { baseEnv, bearer, call, countRows, PUBLIC_URL, registerUser } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';

const keys = await generateKeyPair('ES256', { extractable: true });
const publicJwk: JWK = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
const { client } = await seedClient({ kind: 'confidential', authMethod: 'private_key_jwt', jwks: { keys: [publicJwk] } });

interface Claims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  jti?: string | null;
}

async function assertion(claims: Claims = {}, key: CryptoKey | Uint8Array = keys.privateKey, alg = 'ES256'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg, kid: 'k1' })
    .setIssuer(claims.iss ?? client.id)
    .setSubject(claims.sub ?? client.id)
    .setAudience(claims.aud ?? PUBLIC_URL)
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 60);
  if (claims.jti !== null) jwt.setJti(claims.jti ?? randomId(16));
  return jwt.sign(key);
}

const present = (jwt: string, extra: Record<string, string> = {}) => authenticateAt({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: jwt, ...extra });

async function refused(response: Response) {
  expect(response.status).toBe(401);
  expect((await response.json<{ error: string }>()).error).toBe('invalid_client');
}

describe('private_key_jwt client authentication', () => {
  it('accepts an assertion for the issuer, signed by a registered key', async () => {
    const r = await present(await assertion());
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toEqual({ client_id: client.id });
    expect((await present(await assertion(), { client_id: client.id })).status).toBe(200);
  });

  it('refuses an assertion whose aud is an endpoint’s URL or holds more than the issuer: one a client made for another server naming our endpoints is not replayable here', async () => {
    await refused(await present(await assertion({ aud: TOKEN_ENDPOINT })));
    await refused(await present(await assertion({ aud: [PUBLIC_URL, 'https://other-as.example'] })));
    await refused(await present(await assertion({ aud: [PUBLIC_URL] })));
  });

  it('uses each jti once: the same assertion replayed is refused, its jti kept in D1 until it expires', async () => {
    const jwt = await assertion({ jti: 'once-only' });
    expect((await present(jwt)).status).toBe(200);
    await refused(await present(jwt));
    const row = await baseEnv.DB.prepare('SELECT expires_at FROM client_assertion_jtis WHERE client_id = ? AND jti = ?').bind(client.id, 'once-only').first<{ expires_at: number }>();
    expect(row!.expires_at).toBeGreaterThan(Date.now() / 1000 + 60);
    // Another client may use the same jti: it is single-use per client.
    const other = await seedClient({ authMethod: 'private_key_jwt', jwks: { keys: [publicJwk] } });
    const theirs = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(other.client.id)
      .setSubject(other.client.id)
      .setAudience(PUBLIC_URL)
      .setJti('once-only')
      .setExpirationTime('1m')
      .sign(keys.privateKey);
    expect((await present(theirs)).status).toBe(200);
  });

  it('refuses a foreign key, another audience, a wrong issuer, an expired or long-lived assertion, and one without jti', async () => {
    const foreign = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    await refused(await present(await assertion({}, foreign.privateKey)));
    await refused(await present(await assertion({ aud: 'https://other.example/oauth/token' })));
    await refused(await present(await assertion({ aud: `${PUBLIC_URL}/auth/elsewhere` })));
    await refused(await present(await assertion({ iss: 'cli_someone_else' })));
    await refused(await present(await assertion({ exp: now - 120 })));
    await refused(await present(await assertion({ exp: now + 600 })));
    await refused(await present(await assertion({ jti: null })));
    expect(await countRows('client_assertion_jtis', 'client_id = ?', client.id)).toBeLessThan(10);
  });

  it('accepts only asymmetric algorithms: HS256 with a stored shared key and an unsigned assertion are refused', async () => {
    const shared = randomId(32);
    const hmacKey = new TextEncoder().encode(shared);
    const hs = await seedClient({ authMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: btoa(shared).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), alg: 'HS256' }] } });
    const hsJwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(hs.client.id).setSubject(hs.client.id).setAudience(PUBLIC_URL).setJti(randomId()).setExpirationTime('1m').sign(hmacKey);
    await refused(await present(hsJwt));
    const payload = btoa(JSON.stringify({ iss: client.id, sub: client.id, aud: PUBLIC_URL, jti: randomId(), exp: Math.floor(Date.now() / 1000) + 60 })).replace(/=+$/, '');
    await refused(await present(`eyJhbGciOiJub25lIn0.${payload}.`));
  });

  it('a private_key_jwt client is never authenticated by a secret, and a secret client never by an assertion', async () => {
    await refused(await present(await assertion(), { client_secret: 'anything' }));
    await refused(await authenticateAt({ client_id: client.id, client_secret: 'anything' }));
    await refused(await authenticateAt({}, { authorization: basic(client.id, 'anything') }));
    await refused(await authenticateAt({ client_id: client.id }));
    const secretClient = await seedClient();
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(secretClient.client.id).setSubject(secretClient.client.id).setAudience(PUBLIC_URL).setJti(randomId()).setExpirationTime('1m').sign(keys.privateKey);
    await refused(await present(jwt));
  });

  it('answers a wrong assertion type or a client_id that differs from the assertion with invalid_request', async () => {
    const wrongType = await authenticateAt({ client_assertion_type: 'urn:example:other', client_assertion: await assertion() });
    expect(wrongType.status).toBe(400);
    expect((await wrongType.json<{ error: string }>()).error).toBe('invalid_request');
    const mismatch = await present(await assertion(), { client_id: 'cli_other' });
    expect(mismatch.status).toBe(400);
  });

  it('works for a client registered through the admin API with its public keys', async () => {
    const admin = await registerUser();
    await baseEnv.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
    const r = await call('/auth/admin/clients', {
      json: { name: 'Signer', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] }, grant_types: ['client_credentials'] },
      headers: bearer(admin.access_token),
    });
    expect(r.status, await r.clone().text()).toBe(201);
    const created = await r.json<{ client: { client_id: string; has_secret: boolean }; client_secret?: string }>();
    expect(created.client_secret).toBeUndefined();
    expect(created.client.has_secret).toBe(false);
    const id = created.client.client_id;
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(id).setSubject(id).setAudience(PUBLIC_URL).setJti(randomId()).setExpirationTime('1m').sign(keys.privateKey);
    expect((await present(jwt)).status).toBe(200);
  });
});
