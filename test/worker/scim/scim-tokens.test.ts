/**
 * SCIM tokens an administrator creates (`/auth/admin/scim-tokens`): only admins manage them;
 * each is shown once and kept as its secret's SHA-256; any enabled one authenticates the
 * directory at `/auth/scim/v2` beside SCIM_TOKEN, acting as the same one directory; a rotated
 * secret works for the overlap chosen and not after; a disabled or deleted token is refused
 * on the next request; a use is written at most once a minute; SCIM is on when SCIM_TOKEN is set
 * or a token exists, and answers 404 as before when neither.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { routePolicies } from '../../../src/config/route-policies';
import { ACCESS_COOKIE } from '../../../src/http/cookies';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { sha256 } from '../../../src/util/random';
import { seedClient } from '../support/oauth-clients';
import { bearer, call, countRows, makeEnv, registerUser, uniqueEmail, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { recordingDirectory } from '../support/recording-directory';
import { mfaEnv } from '../support/second-factor-helpers';
import { scim, SCIM_TOKEN, scimEnv } from './support';

const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const TOKEN_SHAPE = /^scim_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/;

/** SCIM with no SCIM_TOKEN: only the tokens an administrator created open it. */
const tokensOnly = makeEnv();
const withSecret = scimEnv();

async function makeAdmin(): Promise<TokenResponse> {
  const admin = await registerUser();
  await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
  return admin;
}

const admin = await makeAdmin();

const asAdmin = (path: string, init: { method?: string; json?: unknown } = {}) =>
  call(`/auth/admin${path}`, { method: init.method ?? (init.json ? 'POST' : 'GET'), json: init.json, headers: bearer(admin.access_token) });

interface TokenView {
  id: string;
  name: string;
  created_at: number;
  created_by: string | null;
  last_used_at: number | null;
  disabled: boolean;
  disabled_at: number | null;
  previous_token_expires_at: number | null;
}

async function create(name = 'Okta'): Promise<{ scim_token: TokenView; token: string }> {
  const r = await asAdmin('/scim-tokens', { json: { name } });
  expect(r.status, await r.clone().text()).toBe(201);
  return r.json();
}

const row = (id: string) => env.DB.prepare('SELECT * FROM scim_tokens WHERE id = ?').bind(id).first<Record<string, unknown>>();

async function audit(event: string) {
  const { results } = await env.DB.prepare('SELECT user_id, detail FROM auth_events WHERE event = ?').bind(event).all<{ user_id: string; detail: string }>();
  return results.map((r) => ({ user_id: r.user_id, ...(JSON.parse(r.detail) as Record<string, unknown>) }));
}

/** A SCIM list call with `token`, on `gateway`. */
const listUsers = (token: string, gateway = tokensOnly) => scim('GET', '/Users?count=1', undefined, { env: gateway, token });

async function expectRefused(r: Response) {
  expect(r.status).toBe(401);
  expect(r.headers.get('content-type')).toBe('application/scim+json');
  expect(r.headers.get('www-authenticate')).toBe('Bearer realm="scim"');
  expect(await r.json()).toMatchObject({ schemas: [ERROR_SCHEMA], status: '401' });
}

afterEach(() => {
  vi.useRealTimers();
  clearRevocationCache();
});

describe('SCIM token administration: who gets in', () => {
  it('refuses a signed-in non-admin with 403 and no token with 401 on every endpoint, changing nothing', async () => {
    const someone = await registerUser();
    const { scim_token: token } = await create();
    const before = await countRows('scim_tokens');
    const stored = await row(token.id);
    const attempts: [string, string, unknown?][] = [
      ['POST', '/scim-tokens', { name: 'Mine' }],
      ['GET', '/scim-tokens'],
      ['GET', `/scim-tokens/${token.id}`],
      ['POST', `/scim-tokens/${token.id}/rotate`, { overlap_seconds: 0 }],
      ['POST', `/scim-tokens/${token.id}/disable`],
      ['POST', `/scim-tokens/${token.id}/enable`],
      ['DELETE', `/scim-tokens/${token.id}`],
    ];
    for (const [method, path, json] of attempts) {
      const r = await call(`/auth/admin${path}`, { method, json, headers: bearer(someone.access_token) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect((await r.json<{ error: string }>()).error).toBe('forbidden');
      expect((await call(`/auth/admin${path}`, { method, json })).status, `anonymous ${method} ${path}`).toBe(401);
    }
    expect(await countRows('scim_tokens')).toBe(before);
    expect(await row(token.id)).toEqual(stored);
  });

  it('refuses an admin without a second factor where MFA_REQUIRED_ROLES asks for one, and a cross-site request on the admin\'s cookie', async () => {
    const { scim_token: token } = await create();
    const before = await countRows('scim_tokens');
    const stored = await row(token.id);
    const mfaRequired = mfaEnv({ MFA_REQUIRED_ROLES: 'admin' });
    const unsafe: [string, string, unknown?][] = [
      ['POST', '/scim-tokens', { name: 'Mine' }],
      ['POST', `/scim-tokens/${token.id}/rotate`, { overlap_seconds: 0 }],
      ['POST', `/scim-tokens/${token.id}/disable`],
      ['POST', `/scim-tokens/${token.id}/enable`],
      ['DELETE', `/scim-tokens/${token.id}`],
    ];
    for (const [method, path, json] of [...unsafe, ['GET', '/scim-tokens'], ['GET', `/scim-tokens/${token.id}`]] as [string, string, unknown?][]) {
      // The admin signed in with a password alone: amr ["pwd"].
      const r = await call(`/auth/admin${path}`, { method, json, env: mfaRequired, headers: bearer(admin.access_token) });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect((await r.json<{ error: string }>()).error).toBe('insufficient_user_authentication');
    }
    for (const [method, path, json] of unsafe) {
      const r = await call(`/auth/admin${path}`, { method, json, cookies: { [ACCESS_COOKIE]: admin.access_token }, headers: { origin: 'https://evil.example' } });
      expect(r.status, `cross-site ${method} ${path}`).toBe(403);
      expect((await r.json<{ error: string }>()).error).toBe('forbidden');
    }
    expect(await countRows('scim_tokens')).toBe(before);
    expect(await row(token.id)).toEqual(stored);
  });
});

describe('creating and listing SCIM tokens', () => {
  it('answers the token once as <id>.<secret>; D1 keeps only the SHA-256 of the secret; audited with the admin', async () => {
    const { scim_token: view, token } = await create('  Okta production  ');
    expect(token).toMatch(TOKEN_SHAPE);
    const [id, secret] = token.split('.') as [string, string];
    expect(view).toEqual({
      id,
      name: 'Okta production',
      created_at: expect.any(Number),
      created_by: admin.user.id,
      updated_at: expect.any(Number),
      last_used_at: null,
      disabled: false,
      disabled_at: null,
      previous_token_expires_at: null,
    });
    const stored = (await row(id))!;
    expect(stored.secret_hash).toBe(await sha256(secret));
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(await audit('admin_scim_token_created')).toContainEqual(expect.objectContaining({ user_id: admin.user.id, admin: admin.user.id, scim_token_id: id }));
  });

  it('lists and shows tokens without any secret or hash: name, created, last used, disabled, overlap end', async () => {
    const { scim_token: view, token } = await create('Entra');
    const list = await asAdmin('/scim-tokens?limit=100');
    expect(list.status).toBe(200);
    const text = await list.clone().text();
    expect(text).not.toContain(token.split('.')[1]);
    expect(text).not.toContain(String((await row(view.id))!.secret_hash));
    const { scim_tokens } = await list.json<{ scim_tokens: TokenView[] }>();
    expect(scim_tokens).toContainEqual(view);
    const one = await asAdmin(`/scim-tokens/${view.id}`);
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual({ scim_token: view });
    expect(await audit('admin_scim_tokens_listed')).toContainEqual(expect.objectContaining({ admin: admin.user.id }));
    expect(await audit('admin_scim_token_viewed')).toContainEqual(expect.objectContaining({ admin: admin.user.id, scim_token_id: view.id }));
  });

  it('answers bad input with a JSON error naming the field, storing nothing', async () => {
    const before = await countRows('scim_tokens');
    const bad: [unknown, string][] = [
      [{}, 'Field "name": is required'],
      [{ name: '' }, 'Field "name": must not be empty'],
      [{ name: '   ' }, 'Field "name": must not be empty'],
      [{ name: 'x'.repeat(101) }, 'Field "name": must be at most 100 characters'],
      [{ name: 'a\nb' }, 'Field "name": must not contain control characters'],
      [{ name: 7 }, 'Field "name": must be a text'],
      [{ name: 'Okta', token: 'chosen-by-me' }, 'Field "token": is generated by the gateway, never chosen'],
      [{ name: 'Okta', scopes: ['all'] }, 'Field "scopes": is not a known field'],
      [['Okta'], 'The request body must be an object.'],
    ];
    for (const [json, description] of bad) {
      const r = await asAdmin('/scim-tokens', { json });
      expect(r.status, JSON.stringify(json)).toBe(400);
      expect(await r.json(), JSON.stringify(json)).toEqual({ error: 'invalid_request', error_description: description });
    }
    const form = await call('/auth/admin/scim-tokens', { form: { name: 'Okta' }, headers: bearer(admin.access_token) });
    expect(form.status).toBe(415);
    expect(await form.json()).toMatchObject({ error: 'unsupported_media_type' });
    for (const path of ['/scim-tokens/scim_nope', `/scim-tokens/${'x'.repeat(65)}`]) {
      const missing = await asAdmin(path);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: 'not_found', error_description: 'No such SCIM token.' });
    }
    expect(await countRows('scim_tokens')).toBe(before);
  });
});

describe('a created token at the SCIM endpoint', () => {
  it('authenticates the directory without SCIM_TOKEN: lists and creates users', async () => {
    const { token } = await create();
    expect((await listUsers(token)).status).toBe(200);
    const email = uniqueEmail('by-token');
    const r = await scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: email }, { env: tokensOnly, token });
    expect(r.status).toBe(201);
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first()).not.toBeNull();
  });

  it('acts as the same one directory as SCIM_TOKEN and any other token: each changes what another created', async () => {
    const { token: first } = await create('Okta');
    const { token: second } = await create('Okta (new)');
    const r = await scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: uniqueEmail('one-directory') }, { env: withSecret, token: first });
    expect(r.status).toBe(201);
    const { id } = await r.json<{ id: string }>();
    const deactivate = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] };
    expect((await scim('PATCH', `/Users/${id}`, deactivate, { env: withSecret, token: second })).status).toBe(200);
    // The directory re-enables an account it disabled, whichever of its credentials it uses.
    const reactivate = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] };
    expect((await scim('PATCH', `/Users/${id}`, reactivate, { env: withSecret, token: SCIM_TOKEN })).status).toBe(200);
    expect((await env.DB.prepare('SELECT disabled_at FROM users WHERE id = ?').bind(id).first<{ disabled_at: number | null }>())!.disabled_at).toBeNull();
  });

  it('SCIM_TOKEN still works beside created tokens, and both work on the same gateway', async () => {
    const { token } = await create();
    expect((await listUsers(SCIM_TOKEN, withSecret)).status).toBe(200);
    expect((await listUsers(token, withSecret)).status).toBe(200);
  });

  it('refuses a token for another purpose: an OAuth client secret, a client id and secret, an access token, a stored hash', async () => {
    const { scim_token: view, token } = await create();
    const { client, secret } = await seedClient();
    const user = await registerUser();
    const storedHash = String((await row(view.id))!.secret_hash);
    const others = [secret, `${client.id}.${secret}`, user.access_token, user.refresh_token, view.id, `${view.id}.${storedHash}`, `${view.id}.${secret}`, `${token}x`, token.slice(0, -1)];
    for (const other of others) {
      await expectRefused(await listUsers(other));
      await expectRefused(await listUsers(other, withSecret));
    }
    expect((await listUsers(token)).status).toBe(200);
  });

  it('records its last use at most once a minute per token, not on every request', async () => {
    const { scim_token: view, token } = await create();
    const start = Math.floor(Date.now() / 1000);
    expect((await listUsers(token)).status).toBe(200);
    const first = (await row(view.id))!.last_used_at as number;
    expect(first).toBeGreaterThanOrEqual(start);
    // Within the minute: no write is even sent (the stored use stays as it was set).
    await env.DB.prepare('UPDATE scim_tokens SET last_used_at = ? WHERE id = ?').bind(first - 50, view.id).run();
    const directory = recordingDirectory(env.DB);
    expect((await listUsers(token, makeEnv({ DB: directory.db }))).status).toBe(200);
    expect((await listUsers(token, makeEnv({ DB: directory.db }))).status).toBe(200);
    expect(directory.statements.filter((s) => /scim_tokens/.test(s.sql) && /^\s*UPDATE/i.test(s.sql))).toEqual([]);
    expect((await row(view.id))!.last_used_at).toBe(first - 50);
    // A minute after the stored use: written again.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime((first + 10) * 1000);
    expect((await listUsers(token)).status).toBe(200);
    expect((await row(view.id))!.last_used_at).toBe(first + 10);
    const { scim_token: listed } = await (await asAdmin(`/scim-tokens/${view.id}`)).json<{ scim_token: TokenView }>();
    expect(listed.last_used_at).toBe(first + 10);
  });
});

describe('rotating a SCIM token', () => {
  it('keeps the old token working until the overlap ends, and not after; the new one works at once', async () => {
    const { scim_token: view, token: old } = await create();
    const r = await asAdmin(`/scim-tokens/${view.id}/rotate`, { json: { overlap_seconds: 3600 } });
    expect(r.status).toBe(200);
    const rotated = await r.json<{ scim_token: TokenView; token: string; previous_token_expires_at: number }>();
    expect(rotated.token).toMatch(TOKEN_SHAPE);
    expect(rotated.token.split('.')[0]).toBe(view.id);
    expect(rotated.token).not.toBe(old);
    const now = Math.floor(Date.now() / 1000);
    expect(rotated.previous_token_expires_at).toBeGreaterThanOrEqual(now + 3599);
    expect(rotated.scim_token.previous_token_expires_at).toBe(rotated.previous_token_expires_at);
    expect((await row(view.id))!).toMatchObject({ secret_hash: await sha256(rotated.token.split('.')[1]!), previous_secret_hash: await sha256(old.split('.')[1]!) });
    expect((await listUsers(rotated.token)).status).toBe(200);
    expect((await listUsers(old)).status).toBe(200);
    // Just before the overlap ends the old token still works; at its end it is refused, the new one not.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime((rotated.previous_token_expires_at - 1) * 1000);
    expect((await listUsers(old)).status).toBe(200);
    vi.setSystemTime(rotated.previous_token_expires_at * 1000);
    await expectRefused(await listUsers(old));
    expect((await listUsers(rotated.token)).status).toBe(200);
    // The admin's view shows no overlap end once it has passed (the admin's own token lives by the real clock).
    vi.useRealTimers();
    await env.DB.prepare('UPDATE scim_tokens SET previous_secret_expires_at = ? WHERE id = ?').bind(now - 1, view.id).run();
    const { scim_token: after } = await (await asAdmin(`/scim-tokens/${view.id}`)).json<{ scim_token: TokenView }>();
    expect(after.previous_token_expires_at).toBeNull();
    expect(await audit('admin_scim_token_rotated')).toContainEqual(expect.objectContaining({ admin: admin.user.id, scim_token_id: view.id, overlap_seconds: 3600 }));
  });

  it('with no overlap the old token stops at once; a bad overlap is a 400 naming the field', async () => {
    const { scim_token: view, token: old } = await create();
    const r = await asAdmin(`/scim-tokens/${view.id}/rotate`, { json: { overlap_seconds: 0 } });
    const { token: fresh, previous_token_expires_at } = await r.json<{ token: string; previous_token_expires_at: number | null }>();
    expect(previous_token_expires_at).toBeNull();
    await expectRefused(await listUsers(old));
    expect((await listUsers(fresh)).status).toBe(200);
    const stored = await row(view.id);
    for (const json of [{ overlap_seconds: 30 * 86_400 + 1 }, { overlap_seconds: -1 }, { overlap_seconds: 1.5 }, { overlap_seconds: '60' }, {}, { overlap_seconds: 0, name: 'x' }]) {
      const bad = await asAdmin(`/scim-tokens/${view.id}/rotate`, { json });
      expect(bad.status, JSON.stringify(json)).toBe(400);
      const body = await bad.json<{ error: string; error_description: string }>();
      expect(body.error).toBe('invalid_request');
      expect(body.error_description).toMatch(/^Field "(overlap_seconds|name)"/);
    }
    expect(await row(view.id)).toEqual(stored);
    expect((await asAdmin('/scim-tokens/scim_nope/rotate', { json: { overlap_seconds: 0 } })).status).toBe(404);
  });
});

describe('disabling and deleting a SCIM token', () => {
  it('a disabled token is refused on the next request, in the SCIM error schema; enabled, it works again', async () => {
    const { scim_token: view, token } = await create();
    expect((await listUsers(token)).status).toBe(200);
    const r = await asAdmin(`/scim-tokens/${view.id}/disable`, { json: {} });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ ok: true, scim_token: { id: view.id, disabled: true, disabled_at: expect.any(Number) } });
    await expectRefused(await listUsers(token));
    await expectRefused(await listUsers(token, withSecret));
    const enabled = await asAdmin(`/scim-tokens/${view.id}/enable`, { json: {} });
    expect(await enabled.json()).toMatchObject({ ok: true, scim_token: { disabled: false, disabled_at: null } });
    expect((await listUsers(token)).status).toBe(200);
    expect(await audit('admin_scim_token_disabled')).toContainEqual(expect.objectContaining({ admin: admin.user.id, scim_token_id: view.id }));
    expect(await audit('admin_scim_token_enabled')).toContainEqual(expect.objectContaining({ admin: admin.user.id, scim_token_id: view.id }));
  });

  it('a deleted token is refused on the next request; deleting it again is 404', async () => {
    const { scim_token: view, token } = await create();
    const { token: other } = await create('Another directory tenant');
    expect((await listUsers(token)).status).toBe(200);
    const r = await asAdmin(`/scim-tokens/${view.id}`, { method: 'DELETE' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, deleted: view.id });
    expect(await row(view.id)).toBeNull();
    await expectRefused(await listUsers(token));
    await expectRefused(await listUsers(token, withSecret));
    expect((await listUsers(other)).status).toBe(200);
    expect((await asAdmin(`/scim-tokens/${view.id}`, { method: 'DELETE' })).status).toBe(404);
    expect(await audit('admin_scim_token_deleted')).toContainEqual(expect.objectContaining({ admin: admin.user.id, scim_token_id: view.id }));
  });
});

describe('whether SCIM is on', () => {
  it('without SCIM_TOKEN and with no token, the endpoint is 404 as before; a token (even disabled) turns it on; deleting the last turns it off', async () => {
    await env.DB.prepare('DELETE FROM scim_tokens').run();
    const off = await listUsers('anything');
    expect(off.status).toBe(404);
    expect(await off.json()).toMatchObject({ error: 'not_found' });
    const { scim_token: view, token } = await create();
    expect((await listUsers(token)).status).toBe(200);
    await asAdmin(`/scim-tokens/${view.id}/disable`, { json: {} });
    await expectRefused(await listUsers(token));
    await asAdmin(`/scim-tokens/${view.id}`, { method: 'DELETE' });
    expect((await listUsers(token)).status).toBe(404);
  });

  it('counts a request against the scim rate limit before D1 is asked whether SCIM is on: over it, a SCIM 429 and no read; each request counted once', async () => {
    await env.DB.prepare('DELETE FROM scim_tokens').run();
    const keys: string[] = [];
    let allowed = true;
    const directory = recordingDirectory(env.DB);
    const limited = makeEnv({ DB: directory.db, RATE_LIMITER_SCIM: { limit: async ({ key }: { key: string }) => (keys.push(key), { success: allowed }) } });
    const asked = () => directory.statements.filter((s) => /scim_tokens/.test(s.sql)).length;
    // Off and within the limit: counted, then the read answers 404.
    expect((await listUsers('anything', limited)).status).toBe(404);
    expect(keys).toEqual(['scim:203.0.113.7']);
    // Over the limit: 429 in the SCIM error schema (whether SCIM is on or not), and D1 is not asked.
    allowed = false;
    const before = asked();
    const refused = await listUsers('anything', limited);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/scim+json');
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(asked()).toBe(before);
    // On (a token exists) and within the limit: each request is counted once, not twice.
    allowed = true;
    const { token } = await create();
    keys.length = 0;
    expect((await listUsers(token, limited)).status).toBe(200);
    await expectRefused(await listUsers('anything', limited));
    expect(keys).toEqual(['scim:203.0.113.7', 'scim:203.0.113.7']);
  });

  it('the directory groups reach tokens and route policy while a created token exists, without SCIM_TOKEN', async () => {
    const origin = recordingOrigin();
    const gateway = makeEnv({
      ROUTES: JSON.stringify([{ path: '/eng', origin: 'service:ORIGIN', auth: 'required', allow: { groups: ['scim:Engineering'] } }]),
      ORIGIN: origin,
      TOKEN_ENCRYPTION_KEY: 'an-encryption-secret-for-the-scim-token-tests',
    });
    const { scim_token: view, token } = await create();
    const refresh = async (t: TokenResponse): Promise<TokenResponse> => {
      const r = await call('/auth/refresh', { env: gateway, json: { refresh_token: t.refresh_token } });
      expect(r.status).toBe(200);
      return r.json();
    };
    let t = await registerUser(uniqueEmail('eng'), undefined, gateway);
    const userId = decodeJwt(t.access_token).sub!;
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(userId).run();
    const group = await scim('POST', '/Groups', { schemas: [], displayName: `Engineering`, members: [{ value: userId }] }, { env: gateway, token });
    expect(group.status, await group.clone().text()).toBe(201);
    t = await refresh(t);
    expect(decodeJwt(t.access_token).scim_groups).toEqual(['scim:Engineering']);
    expect((await call('/eng/x', { env: gateway, headers: { ...bearer(t.access_token), accept: 'application/json' } })).status).toBe(200);
    // No token left: SCIM is off, and no source vouches for scim: names.
    await env.DB.prepare('DELETE FROM scim_tokens').run();
    t = await refresh(t);
    expect(decodeJwt(t.access_token).scim_groups).toBeUndefined();
    expect((await call('/eng/x', { env: gateway, headers: { ...bearer(t.access_token), accept: 'application/json' } })).status).toBe(403);
    expect(view.id).toMatch(/^scim_/);
  });

  it('without SCIM_TOKEN, a rule denying a scim: group fails closed: it refuses a member, an account the directory does not manage, and everyone once no token is left', async () => {
    const origin = recordingOrigin();
    const gateway = makeEnv({
      ROUTES: JSON.stringify([{ path: '/no-contractors', origin: 'service:ORIGIN', auth: 'required', policy: { allow: [{ amr: ['pwd'] }], deny: [{ groups: ['scim:Contractors'] }] } }]),
      ORIGIN: origin,
      TOKEN_ENCRYPTION_KEY: 'an-encryption-secret-for-the-scim-token-tests',
    });
    const { token } = await create();
    const get = (t: TokenResponse) => call('/no-contractors/x', { env: gateway, headers: { ...bearer(t.access_token), accept: 'application/json' } });
    const refresh = async (t: TokenResponse): Promise<TokenResponse> => {
      const r = await call('/auth/refresh', { env: gateway, json: { refresh_token: t.refresh_token } });
      expect(r.status).toBe(200);
      return r.json();
    };
    const verified = async (label: string) => {
      const t = await registerUser(uniqueEmail(label), undefined, gateway);
      await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(t.user.id).run();
      return t;
    };
    const [member, outsider, unmanaged] = [await verified('contractor'), await verified('employee'), await verified('unmanaged')];
    const group = await scim('POST', '/Groups', { schemas: [], displayName: 'Contractors', members: [{ value: member.user.id }] }, { env: gateway, token });
    expect(group.status, await group.clone().text()).toBe(201);
    const manage = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] };
    expect((await scim('PATCH', `/Users/${outsider.user.id}`, manage, { env: gateway, token })).status).toBe(200);
    const [m, o, u] = [await refresh(member), await refresh(outsider), await refresh(unmanaged)];
    expect(decodeJwt(m.access_token).scim_groups).toEqual(['scim:Contractors']);
    expect((await get(m)).status).toBe(403);
    // Managed and in none of the directory's groups: the directory vouches, the deny does not hold.
    expect(decodeJwt(o.access_token).scim_groups).toEqual([]);
    expect((await get(o)).status).toBe(200);
    // Never touched by the directory: nothing vouched, so the deny refuses rather than read "in none".
    expect(decodeJwt(u.access_token).scim_groups).toBeUndefined();
    expect((await get(u)).status).toBe(403);
    // No token left: SCIM is off and vouches for nobody, so the deny refuses the outsider too.
    await env.DB.prepare('DELETE FROM scim_tokens').run();
    const after = await refresh(o);
    expect(decodeJwt(after.access_token).scim_groups).toBeUndefined();
    expect((await get(after)).status).toBe(403);
  });

  it('without SCIM_TOKEN, minting a token for an account the directory does not manage reads no directory groups', async () => {
    const directory = recordingDirectory(env.DB);
    const gateway = makeEnv({ DB: directory.db });
    const t = await registerUser(uniqueEmail('unmanaged'), undefined, gateway);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(decodeJwt(t.access_token).sub!).run();
    await create();
    const r = await call('/auth/refresh', { env: gateway, json: { refresh_token: t.refresh_token } });
    expect(r.status).toBe(200);
    expect(decodeJwt((await r.json<TokenResponse>()).access_token).scim_groups).toBeUndefined();
    expect(directory.statements.filter((s) => /scim_group|scim_tokens/.test(s.sql))).toEqual([]);
  });

  it('a route rule on scim: groups alone loads without SCIM_TOKEN or a provider with groups; one on a provider group is still refused', async () => {
    const compile = async (groups: string[], form: 'allow' | 'policy' = 'allow') => {
      const parsed = parseConfig({
        ENVIRONMENT: 'production',
        PUBLIC_URL: 'https://gate.example.com',
        SIGNING_KEYS: '{"keys":[]}',
        TOKEN_ENCRYPTION_KEY: 'an-encryption-secret-for-the-scim-token-tests',
        ROUTES: JSON.stringify([{ path: '/g', origin: 'https://g.example', auth: 'required', ...(form === 'allow' ? { allow: { groups } } : { policy: { allow: [{ any: [{ groups }] }] } }) }]),
      });
      if (!parsed.ok) throw parsed.error;
      return routePolicies(parsed.config);
    };
    await expect(compile(['scim:Engineering'])).resolves.toBeInstanceOf(Map);
    await expect(compile(['scim:Engineering', 'engineering'])).rejects.toThrow(/no configured sign-in provider supplies groups/);
    await expect(compile(['SCIM:Engineering'], 'policy')).resolves.toBeInstanceOf(Map);
    await expect(compile(['scim:Engineering', 'engineering'], 'policy')).rejects.toThrow(/policy allow\[0\]\.any\[0\]\.groups: no configured sign-in provider supplies groups/);
  });
});
