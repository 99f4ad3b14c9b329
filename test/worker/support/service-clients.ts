/**
 * Services (README "Machines") for tests: a client registered for the client-credentials grant
 * (stored as the admin API would), a token of its own from the real token endpoint, and the two
 * service-token headers.
 */
import type { OAuthClient } from '../../../src/storage/oauth-clients';
import { call, type TestEnv } from './helpers';
import { seedClient } from './oauth-clients';

/** A confidential client with only the client-credentials grant, two scopes, and `audiences`. */
export function serviceClient(audiences: string[], overrides: Partial<OAuthClient> = {}) {
  return seedClient({
    name: 'Nightly export',
    grantTypes: ['client_credentials'],
    redirectUris: [],
    postLogoutRedirectUris: [],
    allowedScopes: ['reports:read', 'reports:write'],
    allowedAudiences: audiences,
    ...overrides,
  });
}

/** A service token from `POST /auth/token` (client_credentials, HTTP Basic) for `resource`. */
export async function serviceToken(env: TestEnv, client: OAuthClient, secret: string, resource: string): Promise<string> {
  const r = await call('/auth/token', {
    env,
    form: { grant_type: 'client_credentials', resource },
    headers: { authorization: `Basic ${btoa(`${client.id}:${secret}`)}` },
  });
  if (r.status !== 200) throw new Error(`client credentials failed: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { access_token: string }).access_token;
}

/** The service-token headers a script sends instead of a token. */
export const serviceHeaders = (clientId: string, secret: string) => ({ 'x-gatehouse-client-id': clientId, 'x-gatehouse-client-secret': secret });
