/**
 * The directory's groups are for the person who owns the address. An account whose address is
 * not proven (someone registered it with a password before the directory provisioned it, so the
 * directory's POST met a 409 and its `userName eq` lookup matched that account) may be a
 * stranger's: its tokens carry no `scim_groups`, so a rule on a `scim:` group neither admits it
 * nor is escaped by it, until the address is proven.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, registerUser, uniqueEmail, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { scim, scimEnv } from './support';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe('directory groups and an address nobody has proven', () => {
  const origin = recordingOrigin();
  const gateway = scimEnv({
    ROUTES: JSON.stringify([
      { path: '/staff', origin: 'service:ORIGIN', auth: 'required', allow: { groups: ['scim:Staff'] } },
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
  const group = async (name: string) => {
    const r = await scim('POST', '/Groups', { schemas: [], displayName: `${name}` }, { env: gateway });
    if (r.status === 201) return (await r.json<{ id: string }>()).id;
    const found = await scim('GET', `/Groups?filter=${encodeURIComponent(`displayName eq "${name}"`)}`, undefined, { env: gateway });
    return (await found.json<{ Resources: { id: string }[] }>()).Resources[0]!.id;
  };

  it('a squatter\'s unverified account the directory matched by userName and put in a group does not pass a rule on that group', async () => {
    const email = uniqueEmail('alice');
    // A stranger registers the employee's address first (unverified, with a password).
    let squatter = await registerUser(email, undefined, gateway);
    // The directory's create meets the existing address; its lookup by userName finds the account.
    expect((await scim('POST', '/Users', { schemas: [], userName: email }, { env: gateway })).status).toBe(409);
    const found = await (await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}`, undefined, { env: gateway })).json<{ Resources: { id: string }[] }>();
    const id = found.Resources[0]!.id;
    const staff = await group('Staff');
    const add = await scim('PATCH', `/Groups/${staff}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: id }] }] }, { env: gateway });
    expect(add.status).toBe(200);

    squatter = await refresh(squatter);
    expect(decodeJwt(squatter.access_token).scim_groups).toBeUndefined();
    expect((await get('/staff/x', squatter.access_token)).status).toBe(403);

    // Once the address is proven, the directory's groups are the account's.
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(id).run();
    squatter = await refresh(squatter);
    expect(decodeJwt(squatter.access_token).scim_groups).toEqual(['scim:Staff']);
    expect((await get('/staff/x', squatter.access_token)).status).toBe(200);
  });

  it('an unverified account is not "in none" of the directory\'s groups: a rule denying one refuses it', async () => {
    let t = await registerUser(uniqueEmail('leaver'), undefined, gateway);
    await group('Leavers');
    t = await refresh(t);
    expect((await get('/no-leavers/x', t.access_token)).status).toBe(403);
  });
});
