/** The per-isolate cache of verified access tokens must never change what is accepted. */
import { describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueAccessToken, verifyAccessToken, verifyAccessTokenUncached } from '../../../src/tokens/access-token';
import { testKey } from '../support/helpers';

const ISS = 'https://gate.example.com';

describe('verified-token cache', () => {
  it('re-checks expiry on every hit, and keys entries by issuer and audience', async () => {
    const keyring = await keyringFromJwks({ keys: [testKey] });
    const ctx = { keyring, issuer: ISS, audience: ISS };
    const t0 = 1_900_000_000;
    const { token } = await issueAccessToken(ctx, { userId: 'usr_1', sessionId: 'ses_1', email: 'a@b.co', emailVerified: true, roles: ['x'], amr: ['pwd'], authTime: 0, ttlSeconds: 600 }, t0);
    const first = await verifyAccessToken(ctx, token, t0 + 1);
    const again = await verifyAccessToken(ctx, token, t0 + 2);
    expect(again).toBe(first); // served from the cache
    expect(Object.isFrozen(again) && Object.isFrozen(again.roles)).toBe(true);
    // Past exp (+30 s tolerance) the cached entry is refused exactly like a fresh check would be.
    await expect(verifyAccessToken(ctx, token, t0 + 631)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(verifyAccessTokenUncached(ctx, token, t0 + 631)).rejects.toMatchObject({ code: 'invalid_token' });
    // A verification context with another audience or issuer does not reuse the entry.
    await verifyAccessToken(ctx, token, t0 + 3);
    await expect(verifyAccessToken({ ...ctx, audience: 'https://other.example.com' }, token, t0 + 3)).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(verifyAccessToken({ ...ctx, issuer: 'https://other.example.com' }, token, t0 + 3)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('never caches a refusal: a bad token stays bad, a good one with the same prefix stays good', async () => {
    const keyring = await keyringFromJwks({ keys: [testKey] });
    const ctx = { keyring, issuer: ISS, audience: ISS };
    const now = Math.floor(Date.now() / 1000);
    const { token } = await issueAccessToken(ctx, { userId: 'usr_2', sessionId: 'ses_2', email: 'a@b.co', emailVerified: false, roles: [], amr: ['pwd'], authTime: 0, ttlSeconds: 600 }, now);
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    for (let i = 0; i < 3; i++) await expect(verifyAccessToken(ctx, tampered)).rejects.toMatchObject({ code: 'invalid_token' });
    expect((await verifyAccessToken(ctx, token)).sub).toBe('usr_2');
  });
});
