/**
 * Registered OAuth clients for tests: stored straight into the real local D1, as the admin API
 * would store them, with a generated secret whose hash alone is kept.
 */
import { env } from 'cloudflare:test';
import { insertClient, type OAuthClient } from '../../../src/storage/oauth-clients';
import { randomId, sha256 } from '../../../src/util/random';

/** A client (confidential, client_secret_basic, code flow for https://app.example.org/callback) and its secret. */
export async function seedClient(overrides: Partial<OAuthClient> = {}): Promise<{ client: OAuthClient; secret: string }> {
  const secret = randomId(32);
  const now = Math.floor(Date.now() / 1000);
  const client: OAuthClient = {
    id: `cli_${randomId(12)}`,
    name: 'Example App',
    kind: 'confidential',
    authMethod: 'client_secret_basic',
    secretHash: await sha256(secret),
    previousSecretHash: null,
    previousSecretExpiresAt: null,
    jwks: null,
    redirectUris: ['https://app.example.org/callback'],
    postLogoutRedirectUris: ['https://app.example.org/'],
    grantTypes: ['authorization_code', 'refresh_token'],
    allowedScopes: ['openid', 'profile', 'email', 'offline_access'],
    allowedAudiences: [],
    backchannelLogoutUri: null,
    firstParty: false,
    source: 'admin',
    tokenEpoch: randomId(8),
    createdAt: now,
    updatedAt: now,
    disabledAt: null,
    ...overrides,
  };
  if (client.authMethod === 'none' || client.authMethod === 'private_key_jwt') client.secretHash = overrides.secretHash ?? null;
  if (!(await insertClient(env.DB, client))) throw new Error(`client ${client.id} exists`);
  return { client, secret };
}
