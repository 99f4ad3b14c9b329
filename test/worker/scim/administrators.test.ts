/**
 * The directory cannot leave the gateway without an administrator: deactivating the only stored
 * administrator (when ADMIN_EMAILS names nobody) is refused as its deletion is, and nothing of
 * the request is applied.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { seedUser } from '../support/helpers';
import { scim } from './support';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';

const disabledAt = async (id: string) => (await env.DB.prepare('SELECT disabled_at FROM users WHERE id = ?').bind(id).first<{ disabled_at: number | null }>())!.disabled_at;

describe('the only administrator', () => {
  it('a PATCH of active false on the only administrator is 409 and leaves the account enabled', async () => {
    await env.DB.prepare("UPDATE users SET roles = '[]'").run();
    const admin = await seedUser({ verified: true, roles: ['admin'] });
    const r = await scim('PATCH', `/Users/${admin.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(r.status).toBe(409);
    expect(await disabledAt(admin.id)).toBeNull();
  });

  it('a PUT with active false on the only administrator is 409 and leaves the account enabled', async () => {
    await env.DB.prepare("UPDATE users SET roles = '[]'").run();
    const admin = await seedUser({ verified: true, roles: ['admin'] });
    const r = await scim('PUT', `/Users/${admin.id}`, { schemas: [USER_SCHEMA], userName: admin.email, active: false });
    expect(r.status).toBe(409);
    expect(await disabledAt(admin.id)).toBeNull();
  });

  it('an administrator is deactivated when another enabled one remains', async () => {
    await env.DB.prepare("UPDATE users SET roles = '[]'").run();
    const admin = await seedUser({ verified: true, roles: ['admin'] });
    await seedUser({ verified: true, roles: ['admin'] });
    const r = await scim('PATCH', `/Users/${admin.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(r.status).toBe(200);
    expect(await disabledAt(admin.id)).not.toBeNull();
  });
});
