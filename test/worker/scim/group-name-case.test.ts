/**
 * A directory group's name is one name without regard to case (RFC 7643: `displayName` is not
 * case-exact; the provider refuses a second group differing only in case). So a route's
 * `scim:` group matches the directory's group whatever the case either is written in: a deny
 * is not escaped because the directory renamed `Contractors` to `contractors`.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { bearer, call, registerUser, uniqueEmail, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { scim, scimEnv } from './support';

describe('scim: group names in route policy', () => {
  const origin = recordingOrigin();
  const gateway = scimEnv({
    ROUTES: JSON.stringify([
      { path: '/no-contractors', origin: 'service:ORIGIN', auth: 'required', policy: { allow: [{ amr: ['pwd'] }], deny: [{ groups: ['scim:Contractors'] }] } },
      { path: '/eng', origin: 'service:ORIGIN', auth: 'required', allow: { groups: ['scim:Engineering'] } },
      { path: '/eng-provider', origin: 'service:ORIGIN', auth: 'required', allow: { groups: ['Engineering'] } },
    ]),
    ORIGIN: origin,
    TOKEN_ENCRYPTION_KEY: 'a-token-encryption-key-for-the-scim-tests',
  });
  const get = (path: string, token: string) => call(path, { env: gateway, headers: { ...bearer(token), accept: 'application/json' } });
  const refresh = async (t: TokenResponse): Promise<TokenResponse> => {
    const r = await call('/auth/refresh', { env: gateway, json: { refresh_token: t.refresh_token } });
    expect(r.status).toBe(200);
    return r.json();
  };
  const member = async (groups: string[]) => {
    const t = await registerUser(uniqueEmail('cased'), undefined, gateway);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(t.user.id).run();
    for (const displayName of groups) {
      expect((await scim('POST', '/Groups', { schemas: [], displayName, members: [{ value: t.user.id }] }, { env: gateway })).status).toBe(201);
    }
    return refresh(t);
  };

  it('a deny on scim:Contractors refuses a member of the directory\'s group "contractors"', async () => {
    const t = await member(['contractors']);
    expect((await get('/no-contractors/x', t.access_token)).status).toBe(403);
  });

  it('an allow on scim:Engineering admits a member of the directory\'s group "ENGINEERING", and a provider group named alike stays apart', async () => {
    const t = await member(['ENGINEERING']);
    expect((await get('/eng/x', t.access_token)).status).toBe(200);
    expect((await get('/eng-provider/x', t.access_token)).status).toBe(403);
  });
});
