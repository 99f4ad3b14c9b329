/** Single-use mailed-link tokens (storage/account-tokens.ts) against real local D1. */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { issueAccountToken, peekAccountToken, redeemAccountToken, revokeAccountTokens } from '../../../src/storage/account-tokens';
import { createUser } from '../../../src/storage/users';
import { sha256 } from '../../../src/util/random';

const NOW = 1_900_000_000;

async function newUser() {
  const user = await createUser(env.DB, { email: `tok-${crypto.randomUUID()}@example.com`, emailVerified: false }, NOW);
  if (!user) throw new Error('user not created');
  return user;
}

describe('account tokens', () => {
  it('are 256-bit, stored only as SHA-256, and redeem exactly once', async () => {
    const user = await newUser();
    const token = await issueAccountToken(env.DB, { userId: user.id, purpose: 'password_reset', email: user.email, ttlSeconds: 1800, now: NOW });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await env.DB.prepare('SELECT token_hash FROM account_tokens WHERE user_id = ?').bind(user.id).all<{ token_hash: string }>();
    expect(stored.results.map((r) => r.token_hash)).toEqual([await sha256(token)]);
    expect(await peekAccountToken(env.DB, token, 'password_reset', NOW + 1)).toMatchObject({ userId: user.id, email: user.email });
    const [a, b] = await Promise.all([
      redeemAccountToken(env.DB, token, 'password_reset', NOW + 1),
      redeemAccountToken(env.DB, token, 'password_reset', NOW + 1),
    ]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    expect(await redeemAccountToken(env.DB, token, 'password_reset', NOW + 2)).toBeNull();
    expect(await peekAccountToken(env.DB, token, 'password_reset', NOW + 2)).toBeNull();
  });

  it('expire, belong to one purpose, and a newer one replaces the older', async () => {
    const user = await newUser();
    const old = await issueAccountToken(env.DB, { userId: user.id, purpose: 'verify_email', email: user.email, ttlSeconds: 600, now: NOW });
    expect(await redeemAccountToken(env.DB, old, 'password_reset', NOW)).toBeNull();
    expect(await peekAccountToken(env.DB, old, 'verify_email', NOW + 600)).toBeNull();
    expect(await redeemAccountToken(env.DB, old, 'verify_email', NOW + 600)).toBeNull();
    const first = await issueAccountToken(env.DB, { userId: user.id, purpose: 'verify_email', email: user.email, ttlSeconds: 600, now: NOW });
    const second = await issueAccountToken(env.DB, { userId: user.id, purpose: 'verify_email', email: user.email, ttlSeconds: 600, now: NOW });
    expect(await redeemAccountToken(env.DB, first, 'verify_email', NOW)).toBeNull();
    expect(await redeemAccountToken(env.DB, second, 'verify_email', NOW)).toMatchObject({ userId: user.id, purpose: 'verify_email' });
  });

  it('can be revoked per purpose; malformed input finds nothing', async () => {
    const user = await newUser();
    const reset = await issueAccountToken(env.DB, { userId: user.id, purpose: 'password_reset', email: user.email, ttlSeconds: 600, now: NOW });
    const verify = await issueAccountToken(env.DB, { userId: user.id, purpose: 'verify_email', email: user.email, ttlSeconds: 600, now: NOW });
    await revokeAccountTokens(env.DB, user.id, ['password_reset']);
    expect(await peekAccountToken(env.DB, reset, 'password_reset', NOW)).toBeNull();
    expect(await peekAccountToken(env.DB, verify, 'verify_email', NOW)).not.toBeNull();
    await revokeAccountTokens(env.DB, user.id);
    expect(await peekAccountToken(env.DB, verify, 'verify_email', NOW)).toBeNull();
    for (const bad of ['', 'x', `${verify}x`, "' OR 1=1 --"]) expect(await redeemAccountToken(env.DB, bad, 'verify_email', NOW)).toBeNull();
  });
});
