import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { generateSigningJwk, keyringFromJwks } from '../../../src/keys/keyring';
import { bearer, call, makeEnv, PUBLIC_URL, registerUser, testKey } from '../support/helpers';

describe('GET /.well-known/jwks.json', () => {
  it('serves public parts only, with kid, alg, use and cache headers', async () => {
    const r = await call('/.well-known/jwks.json');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const { keys } = (await r.json()) as { keys: JWK[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toEqual({ kty: 'EC', crv: 'P-256', x: testKey.x, y: testKey.y, kid: testKey.kid, alg: 'ES256', use: 'sig' });
    expect(JSON.stringify(keys)).not.toContain(testKey.d!);
  });

  it('publishes every key, signs with the first, verifies with any (rotation)', async () => {
    const next = await generateSigningJwk('EdDSA');
    const rotated = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [next, testKey] }) });
    const old = await registerUser(); // signed by testKey under the default env
    const jwks = (await (await call('/.well-known/jwks.json', { env: rotated })).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([next.kid, testKey.kid]);
    expect(jwks.keys.map((k) => k.alg)).toEqual(['EdDSA', 'ES256']);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
    // A token from the previous key still works after the rotation.
    expect((await call('/auth/me', { env: rotated, headers: bearer(old.access_token) })).status).toBe(200);
    // New tokens are signed by the new first key and verify against the published set.
    const fresh = await registerUser(undefined, undefined, rotated);
    const { protectedHeader } = await jwtVerify(fresh.access_token, createLocalJWKSet(jwks as never), { issuer: PUBLIC_URL, audience: PUBLIC_URL });
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', kid: next.kid, typ: 'at+jwt' });
    // Once the old key is dropped, its tokens are refused.
    const dropped = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [next] }) });
    expect((await call('/auth/me', { env: dropped, headers: bearer(old.access_token) })).status).toBe(401);
  });

  it('refuses key sets it cannot use', async () => {
    const d = testKey.d!;
    await expect(keyringFromJwks({ keys: [] })).rejects.toThrow(/holds no keys/);
    await expect(keyringFromJwks({ keys: [{ kty: 'RSA', n: 'x', e: 'AQAB', d }] })).rejects.toThrow(/EC P-256|Ed25519/);
    await expect(keyringFromJwks({ keys: [{ ...testKey, d: undefined }] })).rejects.toThrow(/private key/);
    await expect(keyringFromJwks({ keys: [{ ...testKey, alg: 'HS256' }] })).rejects.toThrow(/does not match/);
    await expect(keyringFromJwks({ keys: [testKey, testKey] })).rejects.toThrow(/share kid/);
    await expect(keyringFromJwks('nope')).rejects.toThrow(/JWK Set/);
    // Messages never carry key material: the refusal must happen, and must not echo `d`.
    const badD = 'AAAA'.repeat(11);
    const refused: unknown = await keyringFromJwks({ keys: [{ ...testKey, d: badD }] }).then(() => 'accepted', (e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
    expect(String(refused)).toMatch(/SIGNING_KEYS: key 1 .* could not be imported/);
    expect(String(refused)).not.toContain(badD);
  });

  it('computes a kid from the thumbprint when a key has none', async () => {
    const { kid: _kid, ...noKid } = testKey;
    const ring = await keyringFromJwks({ keys: [noKid] });
    expect(ring.active.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
