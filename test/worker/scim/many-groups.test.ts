/**
 * The directory's groups in a token are bounded (as a provider's are). When the bound cuts some
 * off, the token must not say "in none" of the ones cut: it carries no `scim_groups` then, so a
 * rule denying a `scim:` group past the bound refuses instead of being escaped.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { MAX_GROUPS } from '../../../src/providers/groups';
import { bearer, call, registerUser, uniqueEmail, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { scim, scimEnv } from './support';

describe('a member of more directory groups than a token holds', () => {
  const origin = recordingOrigin();
  const gateway = scimEnv({
    ROUTES: JSON.stringify([
      { path: '/no-leavers', origin: 'service:ORIGIN', auth: 'required', policy: { allow: [{ amr: ['pwd'] }], deny: [{ groups: ['scim:Leavers'] }] } },
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

  it('a rule denying a group the bound cut off still refuses', async () => {
    let t = await registerUser(uniqueEmail('many'), undefined, gateway);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(t.user.id).run();
    // Names sort before "Leavers", so it is the one past the bound.
    for (let i = 0; i < MAX_GROUPS; i++) {
      const r = await scim('POST', '/Groups', { schemas: [], displayName: `Bulk-${String(i).padStart(2, '0')}`, members: [{ value: t.user.id }] }, { env: gateway });
      expect(r.status).toBe(201);
    }
    expect((await scim('POST', '/Groups', { schemas: [], displayName: 'Leavers', members: [{ value: t.user.id }] }, { env: gateway })).status).toBe(201);
    t = await refresh(t);
    expect((await get('/no-leavers/x', t.access_token)).status).toBe(403);
    expect(decodeJwt(t.access_token).scim_groups).toBeUndefined();
  });
});
