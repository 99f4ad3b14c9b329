/**
 * SCIM Groups: the requests Okta and Entra send (fixtures/), membership changes applied whole or
 * not at all, and the directory's groups reaching route policy as `scim:<name>` at the next
 * refresh; a provider cannot send a `scim:` name, and a source nobody vouches for stays unknown.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../../src/env';
import { externalDecision } from '../../../src/proxy/external-decision';
import { bearer, call, registerUser, uniqueEmail, type TokenResponse } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';
import { claimBefore } from '../support/claim-between';
import { recordingOrigin } from '../support/proxy-helpers';
import { recordingDirectory } from '../support/recording-directory';
import okta from './fixtures/okta-groups.json';
import entra from './fixtures/entra-groups.json';
import { fill, scim, scimEnv, send } from './support';

const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const newUser = async () => {
  const r = await scim('POST', '/Users', { schemas: [], userName: uniqueEmail('member') });
  expect(r.status).toBe(201);
  return (await r.json<{ id: string }>()).id;
};
const members = async (groupId: string) =>
  (await env.DB.prepare('SELECT user_id FROM scim_group_members WHERE group_id = ? ORDER BY user_id').bind(groupId).all<{ user_id: string }>()).results.map((r) => r.user_id);

beforeAll(() => installFakeNetwork());

for (const [who, fixtures] of [['Okta', okta], ['Entra', entra]] as const) {
  describe(`${who}'s group provisioning flow`, () => {
    it(`creates, finds by displayName, renames, adds and removes members, and deletes a group as ${who} documents`, async () => {
      const name = `${who}-${crypto.randomUUID().slice(0, 8)}`;
      const create = await send(fill(fixtures.create, { name }));
      expect(create.status).toBe(201);
      const group = await create.json<{ id: string; displayName: string; members: unknown[] }>();
      expect(group).toMatchObject({ displayName: name, members: [] });
      const found = await (await send(fill(fixtures.lookup, { name: name.toLowerCase() }))).json<{ totalResults: number; Resources: { id: string }[] }>();
      expect(found.Resources.map((g) => g.id)).toEqual([group.id]);

      const renamed = await send(fill(fixtures.rename, { name, id: group.id }));
      expect(renamed.status).toBe(200);
      expect((await renamed.json<{ displayName: string }>()).displayName).toMatch(new RegExp(`^${name} (renamed|updated)$`));

      const [a, b] = [await newUser(), await newUser()];
      expect((await send(fill(fixtures.addMember, { id: group.id, user: a }))).status).toBe(200);
      expect((await send(fill(fixtures.addMember, { id: group.id, user: b }))).status).toBe(200);
      expect(await members(group.id)).toEqual([a, b].sort());
      const removed = await send(fill(fixtures.removeMember, { id: group.id, user: a }));
      expect(removed.status).toBe(200);
      expect((await removed.json<{ members: { value: string }[] }>()).members.map((m) => m.value)).toEqual([b]);
      expect(await members(group.id)).toEqual([b]);

      expect((await send(fill(fixtures.delete, { id: group.id }))).status).toBe(204);
      expect((await scim('GET', `/Groups/${group.id}`)).status).toBe(404);
      expect(await members(group.id)).toEqual([]);
    });
  });
}

describe('group errors, with nothing half-applied', () => {
  it('refuses a second group of the same name (any case) with 409 uniqueness', async () => {
    const name = `dup-${crypto.randomUUID().slice(0, 8)}`;
    expect((await scim('POST', '/Groups', { schemas: [], displayName: name })).status).toBe(201);
    const r = await scim('POST', '/Groups', { schemas: [], displayName: name.toUpperCase() });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ schemas: [ERROR_SCHEMA], scimType: 'uniqueness' });
  });

  it('applies none of a PATCH whose later operation fails (an unknown member, an unknown attribute)', async () => {
    const a = await newUser();
    const created = await (await scim('POST', '/Groups', { schemas: [], displayName: `whole-${crypto.randomUUID().slice(0, 8)}` })).json<{ id: string; displayName: string }>();
    const unknownMember = await scim('PATCH', `/Groups/${created.id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'replace', path: 'displayName', value: 'changed' },
        { op: 'add', path: 'members', value: [{ value: a }, { value: 'usr_nobody' }] },
      ],
    });
    expect(unknownMember.status).toBe(400);
    expect(await unknownMember.json()).toMatchObject({ scimType: 'invalidValue' });
    const unknownPath = await scim('PATCH', `/Groups/${created.id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'add', path: 'members', value: [{ value: a }] },
        { op: 'replace', path: 'owner', value: 'x' },
      ],
    });
    expect(unknownPath.status).toBe(400);
    expect(await unknownPath.json()).toMatchObject({ scimType: 'invalidPath' });
    expect(await members(created.id)).toEqual([]);
    expect((await (await scim('GET', `/Groups/${created.id}`)).json<{ displayName: string }>()).displayName).toBe(created.displayName);
  });
});

describe('replacing a group', () => {
  it('PUT replaces the name, external id and every member at once', async () => {
    const [a, b, c] = [await newUser(), await newUser(), await newUser()];
    const name = `put-${crypto.randomUUID().slice(0, 8)}`;
    const created = await (await scim('POST', '/Groups', { schemas: [], displayName: name, externalId: 'e1', members: [{ value: a }, { value: b }] })).json<{ id: string }>();
    const r = await scim('PUT', `/Groups/${created.id}`, { schemas: [], displayName: `${name}-2`, members: [{ value: c }, { value: c }] });
    expect(r.status).toBe(200);
    const body = await r.json<Record<string, unknown>>();
    expect(body).toMatchObject({ id: created.id, displayName: `${name}-2`, members: [{ value: c, type: 'User' }] });
    expect(body.externalId).toBeUndefined();
    expect(await members(created.id)).toEqual([c]);
  });
});

describe('large groups', () => {
  it('writes a group of 250 members in a handful of statements, not one per member', async () => {
    const t = Math.floor(Date.now() / 1000);
    const ids = Array.from({ length: 250 }, (_, i) => `usr_big${i}_${crypto.randomUUID().slice(0, 8)}`);
    await env.DB.batch(ids.map((id) => env.DB.prepare("INSERT INTO users (id, email, created_at, updated_at) VALUES (?, ?, ?, ?)").bind(id, `${id.toLowerCase()}@example.com`, t, t)));
    const recording = recordingDirectory(env.DB);
    const r = await scim('POST', '/Groups', { schemas: [], displayName: `big-${crypto.randomUUID().slice(0, 8)}`, members: ids.map((value) => ({ value })) }, { env: scimEnv({ DB: recording.db }) });
    expect(r.status).toBe(201);
    const group = await r.json<{ id: string; members: unknown[] }>();
    expect(group.members).toHaveLength(250);
    expect(await members(group.id)).toEqual([...ids].sort());
    expect(recording.statements.filter((st) => st.sql.startsWith('INSERT OR IGNORE INTO scim_group_members')).length).toBeLessThanOrEqual(3);
  });
});

describe('concurrent changes to a group', () => {
  it('a PATCH computed from a read that another change overtook writes nothing and answers 409', async () => {
    const [a, b] = [await newUser(), await newUser()];
    const created = await (await scim('POST', '/Groups', { schemas: [], displayName: `race-${crypto.randomUUID().slice(0, 8)}` })).json<{ id: string; displayName: string }>();
    // Between this PATCH's read and its write, another request adds b (and bumps the version).
    const racing = scimEnv({
      DB: claimBefore(env.DB, 'UPDATE scim_groups SET display_name', () =>
        scim('PATCH', `/Groups/${created.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: b }] }] }),
      ),
    });
    const r = await scim('PATCH', `/Groups/${created.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: a }] }, { op: 'replace', path: 'displayName', value: `${created.displayName}-x` }] }, { env: racing });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ schemas: [ERROR_SCHEMA], status: '409' });
    // b's change stands whole; nothing of the overtaken PATCH was written (not a, not the name).
    expect(await members(created.id)).toEqual([b]);
    expect((await (await scim('GET', `/Groups/${created.id}`)).json<{ displayName: string }>()).displayName).toBe(created.displayName);
  });
});

describe('the directory\'s groups in tokens and route policy', () => {
  const origin = recordingOrigin();
  const gateway = scimEnv({
    ROUTES: JSON.stringify([
      { path: '/eng', origin: 'service:ORIGIN', auth: 'required', allow: { groups: ['scim:Engineering'] } },
      { path: '/not-contractors', origin: 'service:ORIGIN', auth: 'required', policy: { allow: [{ groups: ['scim:Engineering'] }], deny: [{ groups: ['contractors'] }] } },
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

  const engineering = async () => {
    const found = await (await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "Engineering"')}`, undefined, { env: gateway })).json<{ Resources: { id: string }[] }>();
    return found.Resources[0]?.id ?? (await (await scim('POST', '/Groups', { schemas: [], displayName: 'Engineering' }, { env: gateway })).json<{ id: string }>()).id;
  };
  // The directory's groups are those of an account whose address is proven.
  const prove = (userId: string) => env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(userId).run();
  const join = async (groupId: string, userId: string) =>
    expect((await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: userId }] }] }, { env: gateway })).status).toBe(200);

  it('a membership added or removed reaches the route at the next refresh, as scim:<displayName>', async () => {
    const groupId = await engineering();
    const email = uniqueEmail('eng');
    let t = await registerUser(email, undefined, gateway);
    const userId = decodeJwt(t.access_token).sub!;
    await prove(userId);
    t = await refresh(t);
    // Not yet the directory's: it vouches for no group of this account.
    expect(decodeJwt(t.access_token).scim_groups).toBeUndefined();
    expect((await get('/eng/x', t.access_token)).status).toBe(403);

    await join(groupId, userId);
    t = await refresh(t);
    expect(decodeJwt(t.access_token).scim_groups).toEqual(['scim:Engineering']);
    expect((await get('/eng/x', t.access_token)).status).toBe(200);

    const remove = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${userId}"]` }] }, { env: gateway });
    expect(remove.status).toBe(200);
    t = await refresh(t);
    expect(decodeJwt(t.access_token).scim_groups).toEqual([]);
    expect((await get('/eng/x', t.access_token)).status).toBe(403);
  });

  it('the directory vouching for scim: names does not make provider groups known: a rule denying one still refuses a password sign-in', async () => {
    let t = await registerUser(uniqueEmail('deny'), undefined, gateway);
    await prove(decodeJwt(t.access_token).sub!);
    await join(await engineering(), decodeJwt(t.access_token).sub!);
    t = await refresh(t);
    expect(decodeJwt(t.access_token).scim_groups).toEqual(['scim:Engineering']);
    expect(decodeJwt(t.access_token).groups).toBeUndefined();
    // In scim:Engineering (the plain allow passes), but nobody vouches for "contractors".
    expect((await get('/eng/x', t.access_token)).status).toBe(200);
    expect((await get('/not-contractors/x', t.access_token)).status).toBe(403);
  });

  it('the admin\'s explain endpoint decides with the directory\'s groups as a token minted now would', async () => {
    const admin = await registerUser(uniqueEmail('admin'), undefined, gateway);
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
    const member = await registerUser(uniqueEmail('explained'), undefined, gateway);
    await prove(member.user.id);
    await join(await engineering(), member.user.id);
    const r = await call(`/auth/admin/explain?${new URLSearchParams({ user: member.user.id, url: '/eng/x' })}`, { env: gateway, headers: bearer(admin.access_token) });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ decision: 'allow', identity: { groups: ['scim:Engineering'] } });
  });

  it('an external decision service is told whether the directory vouches for the scim: names', async () => {
    const told: unknown[] = [];
    const recording = { fetch: async (_url: string, init: RequestInit) => (told.push(JSON.parse(String(init.body))), Response.json({ allow: true })) };
    const bindings = { TOLD: recording } as unknown as Env;
    const base = { id: 'u', email: 'a@example.com', emailVerified: true, roles: [], groups: ['scim:Engineering'], groupsKnown: false, sessionId: 'scim-vouch', tokenId: 'scim-known', tokenExpiresAt: 0, issuedAt: 0, amr: ['pwd'], authTime: 0 };
    const request = { method: 'GET', host: 'h', path: '/p', ip: null, country: null };
    await externalDecision(bindings, 'TOLD', '/r', { ...base, scimGroupsKnown: true }, request);
    await externalDecision(bindings, 'TOLD', '/r', { ...base, groups: [], tokenId: 'scim-unknown' }, request);
    expect(told).toMatchObject([
      { identity: { groups: ['scim:Engineering'], groups_known: false, scim_groups_known: true } },
      { identity: { groups: [], groups_known: false, scim_groups_known: false } },
    ]);
  });

  it('a provider cannot send a scim: name', async () => {
    const idp = await FakeOidcProvider.create();
    const e = scimEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    const id = `p-${crypto.randomUUID()}`;
    idp.user = { sub: id, email: `${id}@example.com`, email_verified: true, name: 'P', groups: ['scim:Engineering', 'eng'] };
    const r = await signIn('oidc', idp, e);
    expect(r.status).toBe(303);
    const claims = decodeJwt(sessionCookies(r).access);
    expect(claims.groups).toEqual(['eng']);
    // The directory does not manage this account: no scim_groups, and none from the provider.
    expect(claims.scim_groups).toBeUndefined();
  });
});
