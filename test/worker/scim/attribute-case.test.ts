/**
 * SCIM attribute names are case-insensitive (RFC 7643 §2.1): a PATCH that names `Active`
 * deactivates the user as one that names `active` does, never a 200 that changed nothing while
 * the person keeps every session.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { uniqueEmail } from '../support/helpers';
import { scim } from './support';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const newUser = async () => (await (await scim('POST', '/Users', { schemas: [], userName: uniqueEmail('cased') })).json<{ id: string }>()).id;
const disabledAt = async (id: string) => (await env.DB.prepare('SELECT disabled_at FROM users WHERE id = ?').bind(id).first<{ disabled_at: number | null }>())!.disabled_at;

describe('attribute names in any case', () => {
  for (const [label, operation] of [
    ['a path "Active"', { op: 'Replace', path: 'Active', value: 'False' }],
    ['a path "ACTIVE"', { op: 'replace', path: 'ACTIVE', value: false }],
    ['a path-less value {"Active": false}', { op: 'replace', value: { Active: false } }],
  ] as const) {
    it(`a PATCH with ${label} deactivates the user`, async () => {
      const id = await newUser();
      const r = await scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [operation] });
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ active: false });
      expect(await disabledAt(id)).not.toBeNull();
    });
  }

  it('a group PATCH with a path-less {"DisplayName": ...} renames the group', async () => {
    const created = await (await scim('POST', '/Groups', { schemas: [], displayName: `cased-${crypto.randomUUID()}` })).json<{ id: string }>();
    const name = `renamed-${crypto.randomUUID()}`;
    const r = await scim('PATCH', `/Groups/${created.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { DisplayName: name } }] });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ displayName: name });
  });
});

describe('attribute names in any case in a whole resource', () => {
  it('a PUT with "Active": false deactivates the user', async () => {
    const id = await newUser();
    const current = await (await scim('GET', `/Users/${id}`)).json<{ userName: string }>();
    const r = await scim('PUT', `/Users/${id}`, { schemas: [], UserName: current.userName, Active: false });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ active: false });
    expect(await disabledAt(id)).not.toBeNull();
  });

  it('a group PUT with "Members" keeps the members it lists', async () => {
    const id = await newUser();
    const name = `cased-${crypto.randomUUID()}`;
    const created = await (await scim('POST', '/Groups', { schemas: [], DisplayName: name, Members: [{ value: id }] })).json<{ id: string; members: unknown[] }>();
    expect(created.members).toHaveLength(1);
    const r = await scim('PUT', `/Groups/${created.id}`, { schemas: [], displayName: name, Members: [{ value: id }] });
    expect(r.status).toBe(200);
    expect((await r.json<{ members: unknown[] }>()).members).toHaveLength(1);
  });
});
