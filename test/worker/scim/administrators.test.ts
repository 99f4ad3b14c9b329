/**
 * The directory cannot leave the gateway without an administrator: deactivating or deleting the
 * last enabled one (by the stored role, or by a verified address in ADMIN_EMAILS) is refused, and
 * nothing of the request is applied. So a leaked SCIM token cannot lock every administrator out
 * and keep itself from being disabled.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { seedUser, uniqueEmail } from '../support/helpers';
import { scim, scimEnv } from './support';

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

  it('with ADMIN_EMAILS set, the last enabled administrator (by ADMIN_EMAILS or by role) is neither deactivated nor deleted; with another left, it is', async () => {
    await env.DB.prepare("UPDATE users SET roles = '[]'").run();
    const bossEmail = uniqueEmail('boss');
    const gateway = scimEnv({ ADMIN_EMAILS: bossEmail });
    const boss = await seedUser({ email: bossEmail, verified: true });
    const deactivate = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] };
    // The administrator by ADMIN_EMAILS is the only one.
    expect((await scim('PATCH', `/Users/${boss.id}`, deactivate, { env: gateway })).status).toBe(409);
    expect((await scim('DELETE', `/Users/${boss.id}`, undefined, { env: gateway })).status).toBe(409);
    expect(await disabledAt(boss.id)).toBeNull();
    const stored = await seedUser({ verified: true, roles: ['admin'] });
    // The administrator by ADMIN_EMAILS is left: the one by role is deactivated; then the first is the last.
    expect((await scim('PATCH', `/Users/${stored.id}`, deactivate, { env: gateway })).status).toBe(200);
    expect((await scim('PATCH', `/Users/${boss.id}`, deactivate, { env: gateway })).status).toBe(409);
    // The one by role enabled again and left: the one by ADMIN_EMAILS is deactivated; then the other is the last.
    const reactivate = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] };
    expect((await scim('PATCH', `/Users/${stored.id}`, reactivate, { env: gateway })).status).toBe(200);
    expect((await scim('PATCH', `/Users/${boss.id}`, deactivate, { env: gateway })).status).toBe(200);
    expect((await scim('PATCH', `/Users/${stored.id}`, deactivate, { env: gateway })).status).toBe(409);
    expect((await scim('PUT', `/Users/${stored.id}`, { schemas: [USER_SCHEMA], userName: stored.email, active: false }, { env: gateway })).status).toBe(409);
    expect((await scim('DELETE', `/Users/${stored.id}`, undefined, { env: gateway })).status).toBe(409);
    expect(await disabledAt(stored.id)).toBeNull();
  });

  it('two requests at once cannot take the last two administrators: one of them stays enabled', async () => {
    for (const take of ['PATCH', 'DELETE'] as const) {
      await env.DB.prepare("UPDATE users SET roles = '[]'").run();
      const [first, second] = [await seedUser({ verified: true, roles: ['admin'] }), await seedUser({ verified: true, roles: ['admin'] })];
      const deactivate = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] };
      const takeAway = (id: string) => (take === 'PATCH' ? scim('PATCH', `/Users/${id}`, deactivate) : scim('DELETE', `/Users/${id}`));
      const statuses = await Promise.all([takeAway(first.id), takeAway(second.id)]).then((rs) => rs.map((r) => r.status).sort());
      expect(statuses[1], take).toBe(409);
      const enabled = await env.DB.prepare("SELECT COUNT(*) AS n FROM users WHERE disabled_at IS NULL AND id IN (?, ?)").bind(first.id, second.id).first<{ n: number }>();
      expect(enabled!.n, take).toBe(1);
    }
  });
});
