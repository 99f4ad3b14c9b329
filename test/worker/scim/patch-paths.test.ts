/**
 * A PATCH reaches only the resource's own attributes: a path or a value naming `__proto__`,
 * `constructor` or `prototype` at any depth is refused (400 `invalidPath`) before scim-patch
 * walks it, so no request changes the prototypes every later request of the isolate shares.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueEmail } from '../support/helpers';
import { scim } from './support';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const polluted = () => Object.hasOwn(Object.prototype, 'polluted') || Object.hasOwn(Array.prototype, 'polluted');

let userId: string;
let groupId: string;
beforeAll(async () => {
  userId = (await (await scim('POST', '/Users', { schemas: [], userName: uniqueEmail('patched') })).json<{ id: string }>()).id;
  groupId = (await (await scim('POST', '/Groups', { schemas: [], displayName: `patched-${crypto.randomUUID()}` })).json<{ id: string }>()).id;
});
afterEach(() => {
  delete (Object.prototype as Record<string, unknown>).polluted;
  delete (Array.prototype as unknown as Record<string, unknown>).polluted;
});

const patch = (resource: string, operation: Record<string, unknown>) =>
  scim('PATCH', resource, undefined, { raw: JSON.stringify({ schemas: [PATCH_OP], Operations: [operation] }) });

describe('PATCH paths that would reach a prototype', () => {
  for (const path of [
    'name.__proto__.polluted',
    'name.constructor.prototype.polluted',
    'urn:ietf:params:scim:schemas:core:2.0:User:name.__proto__.polluted',
    'emails[type eq "work"].__proto__.polluted',
    'emails.__proto__.polluted',
  ]) {
    it(`a user PATCH at ${path} is 400 invalidPath and changes no prototype`, async () => {
      const r = await patch(`/Users/${userId}`, { op: 'add', path, value: 'yes' });
      expect(polluted()).toBe(false);
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ scimType: 'invalidPath' });
    });
  }

  it('a group PATCH at members.__proto__ is 400 invalidPath and changes no prototype', async () => {
    const r = await patch(`/Groups/${groupId}`, { op: 'replace', path: 'members.__proto__.polluted', value: 'yes' });
    expect(polluted()).toBe(false);
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ scimType: 'invalidPath' });
  });

  for (const [label, raw] of [
    ['__proto__ inside a path-less value', '{"name":{"__proto__":{"polluted":"yes"}}}'],
    ['constructor.prototype inside a path-less value', '{"name":{"constructor":{"prototype":{"polluted":"yes"}}}}'],
  ] as const) {
    it(`a user PATCH with ${label} is 400 invalidPath and changes no prototype`, async () => {
      const r = await scim('PATCH', `/Users/${userId}`, undefined, { raw: `{"schemas":["${PATCH_OP}"],"Operations":[{"op":"replace","value":${raw}}]}` });
      expect(polluted()).toBe(false);
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ scimType: 'invalidPath' });
    });
  }

  it('a value under a path with __proto__ inside is 400 invalidPath and changes no prototype', async () => {
    const r = await scim('PATCH', `/Users/${userId}`, undefined, { raw: `{"schemas":["${PATCH_OP}"],"Operations":[{"op":"add","path":"name","value":{"__proto__":{"polluted":"yes"}}}]}` });
    expect(polluted()).toBe(false);
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ scimType: 'invalidPath' });
  });

  it('an ordinary PATCH still applies afterwards', async () => {
    const r = await patch(`/Users/${userId}`, { op: 'replace', path: 'displayName', value: 'Still Fine' });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ displayName: 'Still Fine' });
  });
});
