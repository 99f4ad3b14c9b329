/**
 * SCIM Users: the requests Okta and Entra send (fixtures/), filters and paging, PATCH and PUT,
 * deactivation and deletion ending every session, and every error in the SCIM error schema
 * with nothing half-applied.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { bearer, call, makeEnv, registerUser, signIn, uniqueEmail, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { claimBefore } from '../support/claim-between';
import { recordingDirectory } from '../support/recording-directory';
import okta from './fixtures/okta-users.json';
import entra from './fixtures/entra-users.json';
import { defaultScimEnv, fill, scim, SCIM_TOKEN, scimEnv, send } from './support';

const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const userRow = (id: string) =>
  env.DB.prepare('SELECT email, email_verified, name, disabled_at, scim_external_id, password_hash FROM users WHERE id = ?').bind(id).first<{
    email: string;
    email_verified: number;
    name: string | null;
    disabled_at: number | null;
    scim_external_id: string | null;
    password_hash: string | null;
  }>();

async function created(body: unknown): Promise<{ id: string; userName: string }> {
  const r = await scim('POST', '/Users', body);
  expect(r.status).toBe(201);
  return r.json();
}

async function expectScimError(r: Response, status: number, scimType?: string) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toBe('application/scim+json');
  const body = await r.json<Record<string, unknown>>();
  expect(body).toMatchObject({ schemas: [ERROR_SCHEMA], status: String(status) });
  expect(typeof body.detail).toBe('string');
  if (scimType) expect(body.scimType).toBe(scimType);
  else expect(body.scimType).toBeUndefined();
}

afterEach(() => clearRevocationCache());

describe('the SCIM endpoint', () => {
  it('does not exist without SCIM_TOKEN', async () => {
    const r = await scim('GET', '/Users', undefined, { env: makeEnv() });
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: 'not_found' });
  });

  it('refuses a missing or wrong bearer token with 401 in the SCIM error schema', async () => {
    await expectScimError(await scim('GET', '/Users', undefined, { token: null }), 401);
    await expectScimError(await scim('GET', '/Users', undefined, { token: `${SCIM_TOKEN}x` }), 401);
    await expectScimError(await scim('GET', '/Users', undefined, { token: SCIM_TOKEN.slice(0, -1) }), 401);
    expect((await scim('GET', '/Users')).status).toBe(200);
  });

  it('refuses a SCIM_TOKEN shorter than 32 characters at start-up', async () => {
    const r = await scim('GET', '/Users', undefined, { env: makeEnv({ SCIM_TOKEN: 'short-token' }), token: 'short-token' });
    expect(r.status).toBe(500);
    expect(await r.text()).toContain('SCIM_TOKEN');
  });

  it('counts every request against the scim rate limit, per IP: over it, 429 in the SCIM error schema, nothing created', async () => {
    const keys: string[] = [];
    const limited = scimEnv({ RATE_LIMITER_SCIM: { limit: async ({ key }: { key: string }) => (keys.push(key), { success: keys.length <= 1 }) } });
    expect((await scim('GET', '/Users?count=1', undefined, { env: limited })).status).toBe(200);
    const email = uniqueEmail('limited');
    const r = await scim('POST', '/Users', { schemas: [], userName: email }, { env: limited });
    await expectScimError(r, 429);
    expect(r.headers.get('retry-after')).toBe('60');
    expect(keys).toEqual(['scim:203.0.113.7', 'scim:203.0.113.7']);
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first()).toBeNull();
  });

  it('answers discovery: ServiceProviderConfig, ResourceTypes and the User and Group schemas', async () => {
    const config = await (await scim('GET', '/ServiceProviderConfig')).json<Record<string, { supported: boolean }>>();
    expect(config.patch!.supported).toBe(true);
    expect(config.filter!.supported).toBe(true);
    expect(config.bulk!.supported).toBe(false);
    const types = await (await scim('GET', '/ResourceTypes')).json<{ Resources: { id: string; endpoint: string }[] }>();
    expect(types.Resources.map((t) => [t.id, t.endpoint])).toEqual([['User', '/Users'], ['Group', '/Groups']]);
    const schemas = await (await scim('GET', '/Schemas')).json<{ Resources: { id: string; attributes: { name: string }[] }[] }>();
    const user = schemas.Resources.find((s) => s.id === 'urn:ietf:params:scim:schemas:core:2.0:User')!;
    expect(user.attributes.map((a) => a.name)).toEqual(['userName', 'externalId', 'displayName', 'name', 'emails', 'active']);
    expect(schemas.Resources.map((s) => s.id)).toContain('urn:ietf:params:scim:schemas:core:2.0:Group');
  });

  it('answers an unknown SCIM path with a SCIM 404', async () => {
    await expectScimError(await scim('GET', '/Widgets'), 404);
    await expectScimError(await scim('GET', '/Users/usr_nobody'), 404);
  });
});

describe('Okta\'s user provisioning flow', () => {
  it('looks up, creates, replaces and deactivates a user as Okta documents', async () => {
    const email = uniqueEmail('okta');
    const lookup = await send(fill(okta.lookup, { email }));
    expect(lookup.status).toBe(200);
    expect(await lookup.json()).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, Resources: [] });

    const create = await send(fill(okta.create, { email }));
    expect(create.status).toBe(201);
    expect(create.headers.get('content-type')).toBe('application/scim+json');
    const user = await create.json<{ id: string }>();
    expect(create.headers.get('location')).toBe(`https://gate.example.com/auth/scim/v2/Users/${user.id}`);
    expect(user).toMatchObject({ userName: email, displayName: 'Test User', active: true, externalId: '00u1dhhb1fkIGP7RL1d8', emails: [{ value: email, primary: true, type: 'work' }] });
    // The directory vouches for the address; there is no password.
    expect(await userRow(user.id)).toMatchObject({ email, email_verified: 1, password_hash: null, scim_external_id: '00u1dhhb1fkIGP7RL1d8' });

    const byId = await scim('GET', `/Users/${user.id}`);
    expect(byId.status).toBe(200);
    expect(await byId.json()).toEqual(user);
    const found = await (await send(fill(okta.lookup, { email }))).json<{ totalResults: number; Resources: { id: string }[] }>();
    expect(found.totalResults).toBe(1);
    expect(found.Resources[0]!.id).toBe(user.id);

    const put = await send(fill(okta.replace, { email, id: user.id }));
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ displayName: 'Another User', active: true });

    const off = await send(fill(okta.deactivate, { email, id: user.id }));
    expect(off.status).toBe(200);
    expect(await off.json()).toMatchObject({ active: false });
    expect((await userRow(user.id))?.disabled_at).not.toBeNull();
  });
});

describe('Entra\'s user provisioning flow', () => {
  it('looks up, creates, patches, disables and deletes a user as Microsoft documents', async () => {
    const email = uniqueEmail('entra');
    expect(await (await send(fill(entra.lookup, { email }))).json()).toMatchObject({ totalResults: 0 });
    const create = await send(fill(entra.create, { email }));
    expect(create.status).toBe(201);
    const user = await create.json<{ id: string }>();
    expect(user).toMatchObject({ userName: email, displayName: 'givenName familyName', externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef' });
    const byExternal = await (await send(entra.lookupByExternalId)).json<{ Resources: { id: string }[] }>();
    expect(byExternal.Resources.map((r) => r.id)).toContain(user.id);

    const patch = await send(fill(entra.updateMultiValued, { email, id: user.id }));
    expect(patch.status).toBe(200);
    expect(await patch.json()).toMatchObject({ userName: email, displayName: 'givenName familyName' });

    const disable = await send(fill(entra.disable, { email, id: user.id }));
    expect(disable.status).toBe(200);
    expect(await disable.json()).toMatchObject({ active: false });

    const del = await send(fill(entra.delete, { email, id: user.id }));
    expect(del.status).toBe(204);
    expect(await userRow(user.id)).toBeNull();
    await expectScimError(await scim('GET', `/Users/${user.id}`), 404);
  });
});

describe('listing users', () => {
  it('filters by userName, externalId, the work email, and/or; pages with startIndex and count', async () => {
    const tag = crypto.randomUUID();
    const a = await created({ schemas: [], userName: uniqueEmail('list-a'), externalId: `${tag}-a` });
    const b = await created({ schemas: [], userName: uniqueEmail('list-b'), externalId: `${tag}-b` });
    const ids = async (filter: string, extra = '') => {
      const r = await scim('GET', `/Users?filter=${encodeURIComponent(filter)}${extra}`);
      expect(r.status).toBe(200);
      return (await r.json<{ Resources: { id: string }[] }>()).Resources.map((x) => x.id);
    };
    expect(await ids(`userName eq "${a.userName.toUpperCase()}"`)).toEqual([a.id]);
    expect(await ids(`externalId eq "${tag}-b"`)).toEqual([b.id]);
    expect(await ids(`emails[type eq "work"].value eq "${b.userName}"`)).toEqual([b.id]);
    expect(await ids(`externalId eq "${tag}-a" or externalId eq "${tag}-b"`)).toEqual([a.id, b.id]);
    expect(await ids(`externalId eq "${tag}-a" and userName eq "${b.userName}"`)).toEqual([]);
    const page = await scim('GET', `/Users?filter=${encodeURIComponent(`externalId sw "${tag}"`)}&startIndex=2&count=1`);
    expect(await page.json()).toMatchObject({ totalResults: 2, startIndex: 2, itemsPerPage: 1, Resources: [{ id: b.id }] });
  });

  it('a lookup by userName, work email or externalId reads only the matching rows, not the whole directory', async () => {
    const u = await created({ schemas: [], userName: uniqueEmail('lookup'), externalId: `ext-${crypto.randomUUID()}` });
    const externalId = (await userRow(u.id))!.scim_external_id!;
    for (const filter of [`userName eq "${u.userName}"`, `emails[type eq "work"].value eq "${u.userName}"`, `externalId eq "${externalId}"`]) {
      const recording = recordingDirectory(env.DB);
      const r = await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`, undefined, { env: scimEnv({ DB: recording.db }) });
      expect((await r.json<{ Resources: { id: string }[] }>()).Resources.map((x) => x.id)).toEqual([u.id]);
      const reads = recording.statements.map((st) => st.sql).filter((sql) => /FROM users/.test(sql));
      expect(reads.length).toBeGreaterThan(0);
      for (const sql of reads) expect(sql).toMatch(/WHERE (email|scim_external_id) = \?/);
    }
  });

  it('answers a malformed filter with 400 invalidFilter', async () => {
    await expectScimError(await scim('GET', `/Users?filter=${encodeURIComponent('userName eq')}`), 400, 'invalidFilter');
    await expectScimError(await scim('GET', `/Users?filter=${encodeURIComponent('userName zz "x"')}`), 400, 'invalidFilter');
  });
});

describe('errors, with nothing half-applied', () => {
  it('answers a conflicting email with 409 uniqueness and creates nothing', async () => {
    const taken = uniqueEmail('taken');
    await created({ schemas: [], userName: taken });
    await expectScimError(await scim('POST', '/Users', { schemas: [], userName: taken.toUpperCase() }), 409, 'uniqueness');
    expect((await env.DB.prepare('SELECT COUNT(*) AS n FROM users WHERE email = ?').bind(taken).first<{ n: number }>())?.n).toBe(1);
  });

  it('answers a PATCH naming an unknown attribute with 400 invalidPath and applies none of its operations', async () => {
    const u = await created({ schemas: [], userName: uniqueEmail('path'), displayName: 'Before' });
    const r = await scim('PATCH', `/Users/${u.id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [
        { op: 'replace', path: 'displayName', value: 'After' },
        { op: 'replace', path: 'active', value: false },
        { op: 'replace', path: 'favouriteColour', value: 'blue' },
      ],
    });
    await expectScimError(r, 400, 'invalidPath');
    expect(await userRow(u.id)).toMatchObject({ name: 'Before', disabled_at: null });
    const pathless = await scim('PATCH', `/Users/${u.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: false, roles: ['admin'] } }] });
    await expectScimError(pathless, 400, 'invalidPath');
    expect(await userRow(u.id)).toMatchObject({ disabled_at: null });
  });

  it('answers an oversized body with 413 in the SCIM error schema and creates nothing', async () => {
    const email = uniqueEmail('big');
    const r = await scim('POST', '/Users', { schemas: [], userName: email, displayName: 'x'.repeat(70 * 1024) });
    await expectScimError(r, 413);
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first()).toBeNull();
  });

  it('a PUT that leaves out active keeps a disabled account disabled', async () => {
    const u = await created({ schemas: [], userName: uniqueEmail('kept'), active: false });
    const r = await scim('PUT', `/Users/${u.id}`, { schemas: [], userName: u.userName, displayName: 'Renamed' });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ active: false, displayName: 'Renamed' });
    expect((await userRow(u.id))?.disabled_at).not.toBeNull();
  });

  it('answers a body that is not JSON with 415 or 400 invalidSyntax, and creates nothing', async () => {
    const email = uniqueEmail('typed');
    await expectScimError(await scim('POST', '/Users', { schemas: [], userName: email }, { contentType: 'text/plain' }), 415);
    await expectScimError(await scim('POST', '/Users', undefined, { raw: `{"userName": "${email}"` }), 400, 'invalidSyntax');
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first()).toBeNull();
  });

  it('answers a userName that is not an email address with 400 invalidValue', async () => {
    await expectScimError(await scim('POST', '/Users', { schemas: [], userName: 'not-an-address' }), 400, 'invalidValue');
  });

  it('does not let the directory change an account\'s address, its own accounts\' included, and writes nothing of that request', async () => {
    const email = uniqueEmail('own');
    await registerUser(email, undefined, defaultScimEnv);
    const own = (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!.id;
    const provisioned = await created({ schemas: [], userName: uniqueEmail('directory'), displayName: 'Before' });
    for (const [id, address] of [[own, email], [provisioned.id, provisioned.userName]] as const) {
      const patch = await scim('PATCH', `/Users/${id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'displayName', value: 'After' }, { op: 'replace', path: 'userName', value: uniqueEmail('moved') }] });
      await expectScimError(patch, 400, 'mutability');
      const put = await scim('PUT', `/Users/${id}`, { schemas: [], userName: uniqueEmail('moved'), displayName: 'After', active: false });
      await expectScimError(put, 400, 'mutability');
      expect(await userRow(id)).toMatchObject({ email: address, disabled_at: null });
      expect((await userRow(id))?.name).not.toBe('After');
    }
  });
});

describe('deactivation and deletion end every session at once', () => {
  const origin = recordingOrigin();
  const gateway = scimEnv({
    ROUTES: JSON.stringify([
      { path: '/now', origin: 'service:ORIGIN', auth: 'required', revocation: 'immediate' },
      { path: '/app', origin: 'service:ORIGIN', auth: 'required' },
    ]),
    ORIGIN: origin,
  });
  const get = (token: string, path = '/now/x') => call(path, { env: gateway, headers: { ...bearer(token), accept: 'application/json' } });
  const idOf = async (email: string) => (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!.id;

  it('a sign-in that stores its session between the first ending and the disable is ended too', async () => {
    const email = uniqueEmail('racing');
    await registerUser(email, undefined, gateway);
    let late: TokenResponse | undefined;
    const racing = scimEnv({ ...gateway, DB: claimBefore(env.DB, 'UPDATE users SET name', async () => (late = await signIn(email, undefined, gateway))) });
    const r = await scim('PATCH', `/Users/${await idOf(email)}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] }, { env: racing });
    expect(r.status).toBe(200);
    expect(late).toBeDefined();
    expect((await get(late!.access_token)).status).toBe(401);
  });

  it('a change overtaken by another (read, then the other writes, then this one) writes nothing and answers 409', async () => {
    const u = await created({ schemas: [], userName: uniqueEmail('overtaken'), displayName: 'Before' });
    const racing = scimEnv({
      DB: claimBefore(env.DB, 'UPDATE users SET name', () => scim('PATCH', `/Users/${u.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] })),
    });
    const r = await scim('PUT', `/Users/${u.id}`, { schemas: [], userName: u.userName, displayName: 'After', active: true }, { env: racing });
    expect(r.status).toBe(409);
    // The deactivation stands; the overtaken PUT neither renamed nor re-enabled the account.
    expect(await userRow(u.id)).toMatchObject({ name: 'Before' });
    expect((await userRow(u.id))?.disabled_at).not.toBeNull();
  });

  for (const [how, end] of [
    ['PATCH active false', (id: string) => scim('PATCH', `/Users/${id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] }, { env: gateway })],
    ['PUT active false', async (id: string) => scim('PUT', `/Users/${id}`, { schemas: [], userName: (await userRow(id))!.email, active: false }, { env: gateway })],
    ['DELETE', (id: string) => scim('DELETE', `/Users/${id}`, undefined, { env: gateway })],
  ] as const) {
    it(`${how}: an immediate route refuses the old token on the next request, a cached route too (KV), and refresh is refused`, async () => {
      const email = uniqueEmail('ends');
      const t = await registerUser(email, undefined, gateway);
      expect((await get(t.access_token)).status).toBe(200);
      const r = await end(await idOf(email));
      expect([200, 204]).toContain(r.status);
      const refused = await get(t.access_token);
      expect(refused.status).toBe(401);
      // A cached route with nothing cached in this isolate reads the revocation from KV.
      clearRevocationCache();
      expect((await get(t.access_token, '/app/x')).status).toBe(401);
      expect((await call('/auth/refresh', { env: gateway, json: { refresh_token: t.refresh_token } })).status).toBe(401);
    });
  }
});
