/**
 * The claim checks of access tokens (tokens/access-token.ts) and of the origin package
 * (`@gatehouse/verify`, packages/verify/src/index.ts), case by case at the verifier itself:
 * through `/auth/me` a forged token is refused by the D1 session check anyway, so only here does each claim rule show.
 */
import { importJWK, SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { GatehouseAssertionError, verifyGatehouseAssertion } from '../../../packages/verify/src/index';
import { verifyAccessTokenUncached } from '../../../src/tokens/access-token';
import { PUBLIC_URL, testKey } from '../support/helpers';

const NOW = 1_800_000_000;
/** The verifier's clock tolerance (tokens/access-token.ts), in seconds. */
const CLOCK_TOLERANCE_S = 30;
const ring = await keyringFromJwks({ keys: [testKey] });
const ctx = { keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL };
const privateKey = (await importJWK(testKey, 'ES256')) as CryptoKey;

function accessClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: PUBLIC_URL,
    aud: PUBLIC_URL,
    sub: 'usr_1',
    sid: 'ses_1',
    jti: 'jti_1',
    iat: NOW,
    exp: NOW + 300,
    email: 'a@example.com',
    email_verified: true,
    roles: ['admin'],
    amr: ['pwd'],
    auth_time: NOW,
    ...overrides,
  };
}

const sign = (payload: Record<string, unknown>, typ = 'at+jwt') =>
  new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: testKey.kid!, typ }).sign(privateKey);

describe('access token claims', () => {
  it('a well-formed token gives exactly its claims, frozen', async () => {
    const claims = await verifyAccessTokenUncached(ctx, await sign(accessClaims()), NOW);
    expect(claims).toMatchObject({ sub: 'usr_1', sid: 'ses_1', jti: 'jti_1', iat: NOW, exp: NOW + 300, email: 'a@example.com', email_verified: true, roles: ['admin'] });
    expect(Object.isFrozen(claims)).toBe(true);
    expect(Object.isFrozen(claims.roles)).toBe(true);
  });

  it.each([
    ['sub empty', { sub: '' }],
    ['sid empty', { sid: '' }],
    ['jti empty', { jti: '' }],
    ['sub too long', { sub: 'x'.repeat(257) }],
    ['sid too long', { sid: 'x'.repeat(257) }],
    ['jti too long', { jti: 'x'.repeat(257) }],
    ['sub a number', { sub: 42 }],
    ['sid a number', { sid: 42 }],
    ['jti an object', { jti: { id: 1 } }],
    ['iat a string', { iat: String(NOW) }],
    ['iat in the future', { iat: NOW + CLOCK_TOLERANCE_S + 1 }],
    ['email missing', { email: undefined }],
    ['email a number', { email: 7 }],
    ['email_verified a string', { email_verified: 'true' }],
    ['email_verified missing', { email_verified: undefined }],
    ['roles a string', { roles: 'admin' }],
    ['roles missing', { roles: undefined }],
    ['roles holding a number', { roles: ['admin', 1] }],
  ])('refuses %s with invalid_token', async (_, overrides) => {
    const token = await sign(accessClaims(overrides));
    await expect(verifyAccessTokenUncached(ctx, token, NOW)).rejects.toMatchObject({ code: 'invalid_token', description: 'The access token is invalid.' });
  });

  it("a refusal from the key lookup keeps its own description (it is the gateway's ApiError, not jose's)", async () => {
    const token = await new SignJWT(accessClaims()).setProtectedHeader({ alg: 'ES256', kid: 'not-ours', typ: 'at+jwt' }).sign(privateKey);
    await expect(verifyAccessTokenUncached(ctx, token, NOW)).rejects.toMatchObject({ code: 'invalid_token', description: 'The token was not signed by a key of this gateway.' });
  });

  it('accepts the boundaries: 256-character ids, iat at the clock tolerance, no roles', async () => {
    const long = 'x'.repeat(256);
    const claims = await verifyAccessTokenUncached(ctx, await sign(accessClaims({ sub: long, sid: long, jti: long, iat: NOW + CLOCK_TOLERANCE_S, roles: [] })), NOW);
    expect(claims).toMatchObject({ sub: long, sid: long, jti: long, roles: [] });
  });
});

describe('assertion identity claims (origin helper)', () => {
  const JWKS_URL = 'https://claims-schema.example/.well-known/jwks.json';
  const ISSUER = 'https://claims-schema.example';
  const AUDIENCE = 'https://app.example';
  const { d: _private, ...publicJwk } = testKey;

  afterEach(() => vi.restoreAllMocks());

  function serveKeys() {
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () => new Response(JSON.stringify({ keys: [publicJwk] }), { headers: { 'content-type': 'application/json' } }));
  }

  async function assertion(overrides: Record<string, unknown> = {}) {
    const t = Math.floor(Date.now() / 1000);
    return sign({ iss: ISSUER, aud: AUDIENCE, sub: 'usr_1', sid: 'ses_1', iat: t, exp: t + 60, email: 'a@example.com', email_verified: false, roles: ['ops'], ...overrides }, 'JWT');
  }

  const verify = async (token: string) => verifyGatehouseAssertion({ headers: { 'x-auth-assertion': token } }, { jwksUrl: JWKS_URL, audience: AUDIENCE });

  it('gives the identity, dropping roles that are not strings', async () => {
    serveKeys();
    const who = await verify(await assertion({ roles: ['ops', 7, null, 'dev'] }));
    expect(who).toMatchObject({ userId: 'usr_1', sessionId: 'ses_1', email: 'a@example.com', emailVerified: false, roles: ['ops', 'dev'] });
    expect(who.claims).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'usr_1' });
  });

  it.each([
    ['email missing', { email: undefined }],
    ['email_verified a string', { email_verified: 'false' }],
    ['roles a string', { roles: 'ops' }],
    ['roles missing', { roles: undefined }],
    ['sid a number', { sid: 1 }],
    ['sub a number', { sub: 1 }],
  ])('refuses %s: it lacks identity claims', async (_, overrides) => {
    serveKeys();
    const refused = verify(await assertion(overrides));
    await expect(refused).rejects.toBeInstanceOf(GatehouseAssertionError);
    await expect(refused).rejects.toThrow('The X-Auth-Assertion lacks identity claims.');
  });
});
