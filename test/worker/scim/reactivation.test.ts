/**
 * The directory enables only what it disabled: an account the gateway's administrator disabled
 * (a compromised account, say) is not re-enabled by the directory's next push of `active: true`
 * (409, still disabled); one the directory deactivated it may re-activate.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { bearer, call, seedUser, signedInUser, uniqueEmail } from '../support/helpers';
import { defaultScimEnv, scim } from './support';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const disabledAt = async (id: string) => (await env.DB.prepare('SELECT disabled_at FROM users WHERE id = ?').bind(id).first<{ disabled_at: number | null }>())!.disabled_at;
const activate = (id: string) => scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] });

describe('re-activation', () => {
  it('an account the administrator disabled is not enabled by the directory: 409, still disabled', async () => {
    const admin = await signedInUser({ verified: true, roles: ['admin'] }, defaultScimEnv);
    const user = await seedUser({ verified: true });
    const disabled = await call(`/auth/admin/users/${user.id}/disable`, { method: 'POST', env: defaultScimEnv, headers: bearer(admin.access_token) });
    expect(disabled.status).toBe(200);
    const r = await activate(user.id);
    expect(r.status).toBe(409);
    expect(await disabledAt(user.id)).not.toBeNull();
    const put = await scim('PUT', `/Users/${user.id}`, { schemas: [], userName: user.email, active: true });
    expect(put.status).toBe(409);
    expect(await disabledAt(user.id)).not.toBeNull();
  });

  it('an account the directory deactivated, the directory re-activates', async () => {
    const { id } = await (await scim('POST', '/Users', { schemas: [], userName: uniqueEmail('back') })).json<{ id: string }>();
    expect((await scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] })).status).toBe(200);
    expect(await disabledAt(id)).not.toBeNull();
    expect((await activate(id)).status).toBe(200);
    expect(await disabledAt(id)).toBeNull();
  });

  it('an account the directory created disabled, the directory activates', async () => {
    const { id } = await (await scim('POST', '/Users', { schemas: [], userName: uniqueEmail('later'), active: false })).json<{ id: string }>();
    expect((await activate(id)).status).toBe(200);
    expect(await disabledAt(id)).toBeNull();
  });
});
