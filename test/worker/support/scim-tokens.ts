/**
 * SCIM tokens for tests: stored straight into the real local D1, as an admin's create stores
 * them (only the secret's hash kept); the token text is returned for requests.
 */
import { env } from 'cloudflare:test';
import { newScimTokenSecret, tokenText } from '../../../src/auth/scim-tokens';
import { insertScimToken, type ScimToken } from '../../../src/storage/scim-tokens';
import { sha256 } from '../../../src/util/random';

export async function seedScimToken(overrides: Partial<ScimToken> = {}): Promise<ScimToken & { text: string }> {
  const { id, secret } = newScimTokenSecret();
  const t = Math.floor(Date.now() / 1000);
  const token: ScimToken = {
    id,
    name: 'Test directory',
    secretHash: await sha256(secret),
    previousSecretHash: null,
    previousSecretExpiresAt: null,
    createdBy: null,
    createdAt: t,
    updatedAt: t,
    lastUsedAt: null,
    disabledAt: null,
    ...overrides,
  };
  if (!(await insertScimToken(env.DB, token))) throw new Error(`SCIM token ${token.id} exists`);
  return { ...token, text: tokenText(token.id, secret) };
}
