/**
 * No Unicode case folding into someone else's address, for passwords: an address with a non-ASCII character is refused at
 * registration and sign-in, before any case folding (`\u212A`, the Kelvin sign, lower-cases to
 * `k`: `\u212Aevin@x` would otherwise register or sign in as `kevin@x`).
 */
import { describe, expect, it } from 'vitest';
import { call, countRows, GOOD_PASSWORD, PUBLIC_URL, uniqueEmail } from '../support/helpers';

const origin = { origin: PUBLIC_URL };

describe('non-ASCII email addresses at registration and password sign-in', () => {
  it('refuses to register the Kelvin-sign spelling of an address', async () => {
    const ascii = uniqueEmail('kevin');
    const folded = ascii.replace(/^k/, '\u212A');
    const r = await call('/auth/register', { json: { email: folded, password: GOOD_PASSWORD }, headers: origin });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: string; error_description: string };
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toContain('ASCII');
    expect(await countRows('users', 'email = ?', ascii)).toBe(0);
  });

  it('refuses to sign in with the Kelvin-sign spelling of an existing account', async () => {
    const ascii = uniqueEmail('kevin');
    expect((await call('/auth/register', { json: { email: ascii, password: GOOD_PASSWORD }, headers: origin })).status).toBe(201);
    const r = await call('/auth/login', { json: { email: ascii.replace(/^k/, '\u212A'), password: GOOD_PASSWORD }, headers: origin });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    expect((await call('/auth/login', { json: { email: ascii, password: GOOD_PASSWORD }, headers: origin })).status).toBe(200);
  });

  it('refuses other non-ASCII addresses too (one rule: ASCII only)', async () => {
    for (const email of [`j\u00fcrgen-${Date.now()}@example.com`, `user-${Date.now()}@b\u00fccher.example`, `\u017Fam-${Date.now()}@example.com`]) {
      const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD }, headers: origin });
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    }
  });
});
