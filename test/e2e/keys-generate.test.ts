/**
 * `npm run keys:generate` prints a key the gateway accepts: the script and the development
 * fallback share src/keys/generate-jwk.ts, which the script imports through Node's type stripping.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../src/keys/keyring';

function generate(...args: string[]): unknown {
  const out = execFileSync(process.execPath, ['scripts/generate-keys.mjs', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out);
}

describe('npm run keys:generate', () => {
  it.each([
    [[], 'ES256'],
    [['EdDSA'], 'EdDSA'],
  ])('prints a private JWK that keyringFromJwks accepts (%j)', async (args, alg) => {
    const jwk = generate(...args);
    expect(jwk).toMatchObject({ alg, use: 'sig', d: expect.any(String), kid: expect.stringMatching(/^\d{4}-\d\d-\d\d-.{8}$/) });
    const ring = await keyringFromJwks({ keys: [jwk] });
    expect(ring.active.alg).toBe(alg);
    expect(ring.jwks.keys[0]).not.toHaveProperty('d');
  });
});
