/**
 * The directory vouches only for the accounts it manages: one it created, or one it matched and
 * wrote (PUT, PATCH), or put in a group. An account it has never touched (a person the directory
 * does not assign to the gateway, who signed up with a proven address) carries no `scim_groups`:
 * a rule denying a `scim:` group is unknown for it and refuses, never "in none".
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, registerUser, uniqueEmail, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { scim, scimEnv } from './support';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe('accounts the directory does not manage', () => {
  const origin = recordingOrigin();
  const gateway = scimEnv({
    ROUTES: JSON.stringify([
      { path: '/no-contractors', origin: 'service:ORIGIN', auth: 'required', policy: { allow: [{ amr: ['pwd'] }], deny: [{ groups: ['scim:Contractors'] }] } },
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
  const verifiedSignUp = async () => {
    const t = await registerUser(uniqueEmail('outside'), undefined, gateway);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(t.user.id).run();
    return refresh(t);
  };

  it('a verified account the directory never touched has no scim_groups, and a rule denying a scim: group refuses it', async () => {
    expect((await scim('POST', '/Groups', { schemas: [], displayName: 'Contractors' }, { env: gateway })).status).toBe(201);
    const t = await verifiedSignUp();
    expect(decodeJwt(t.access_token).scim_groups).toBeUndefined();
    expect((await get('/no-contractors/x', t.access_token)).status).toBe(403);
  });

  it('once the directory has matched and written the account, it vouches for its groups, even none', async () => {
    let t = await verifiedSignUp();
    const r = await scim('PATCH', `/Users/${t.user.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] }, { env: gateway });
    expect(r.status).toBe(200);
    t = await refresh(t);
    expect(decodeJwt(t.access_token).scim_groups).toEqual([]);
    expect((await get('/no-contractors/x', t.access_token)).status).toBe(200);
  });

  it('an account the directory created is vouched for from the start', async () => {
    const email = uniqueEmail('created');
    const r = await scim('POST', '/Users', { schemas: [], userName: email }, { env: gateway });
    expect(r.status).toBe(201);
    const row = await env.DB.prepare('SELECT scim_managed_at FROM users WHERE email = ?').bind(email).first<{ scim_managed_at: number | null }>();
    expect(row?.scim_managed_at).not.toBeNull();
  });
});
