/**
 * The console's Apps and machines area: the clients (list with its filter, one client, the
 * registration form), SCIM tokens and the consents users gave to apps. Each action unconfirmed
 * changes nothing; confirmed it acts through the JSON API's (or the account page's) own
 * function, is audited with the acting admin, and shows its notice. A new secret or token is
 * shown once, on the page the confirmed post answers (never cached, never in a Location or a URL).
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/util/random';
import { basic, authenticateAt } from '../support/client-auth';
import { countRows, type TestEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { seedScimToken } from '../support/scim-tokens';
import type { Jar } from '../support/second-factor-helpers';
import { sessionExec, sessionRow, sessionRows, sessionsObject } from '../support/user-sessions-store';
import { scim } from '../scim/support';
import { adminWithSecondFactor, auditRows, browse, consoleEnv, pageHtml, plainSession, submit } from './console-support';

const APPS = '/auth/admin/console/apps';

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  e = consoleEnv();
  admin = await adminWithSecondFactor(e);
});

const clientRow = (id: string) => env.DB.prepare('SELECT * FROM oauth_clients WHERE id = ?').bind(id).first<Record<string, unknown>>();
const tokenRow = (id: string) => env.DB.prepare('SELECT * FROM scim_tokens WHERE id = ?').bind(id).first<Record<string, unknown>>();
const notice = (html: string) => /<p class="banner" role="status" id="notice">([^<]*)<\/p>/.exec(html)?.[1] ?? null;
const shownSecret = (html: string) => /<p class="secret" id="new-secret"><code>([^<]+)<\/code><\/p>/.exec(html)?.[1] ?? null;
const now = () => Math.floor(Date.now() / 1000);

/** Posts unconfirmed and checks the confirmation page and that `state` is unchanged; then the confirmed post's answer. */
async function confirmThenDo(path: string, fields: Record<string, string>, state: () => Promise<unknown>): Promise<Response> {
  const before = await state();
  const ask = await submit(e, admin.jar, path, fields);
  expect(ask.status, await ask.clone().text()).toBe(200);
  const html = await pageHtml(ask);
  expect(html).toContain('Please confirm');
  expect(html).toContain('name="confirm" value="yes"');
  expect(await state(), 'nothing changes before the confirmation').toEqual(before);
  return submit(e, admin.jar, path, confirmationFields(html));
}

/** The fields the confirmation page's form posts (its hidden inputs, `confirm=yes` among them). */
function confirmationFields(html: string): Record<string, string> {
  const form = /<form method="post" action="[^"]*" id="confirm-form">([\s\S]*?)<\/form>/.exec(html)![1]!;
  const unescape = (s: string) => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  return Object.fromEntries([...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1]!, unescape(m[2]!)]));
}

/** Posts an action as a browser does: the first post, then the confirmation page's own form. */
async function confirmed(path: string, fields: Record<string, string>): Promise<Response> {
  const ask = await submit(e, admin.jar, path, fields);
  if (ask.status !== 200) return ask;
  return submit(e, admin.jar, path, confirmationFields(await ask.text()));
}

/** The confirmed post's redirect to `page` with its notice, followed. */
async function afterNotice(done: Response, page: string): Promise<string> {
  expect(done.status, await done.clone().text()).toBe(303);
  const location = done.headers.get('location')!;
  expect(location).toMatch(new RegExp(`^${page.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\?done=[a-z_]+$`));
  const shown = await browse(e, admin.jar, location);
  expect(shown.status).toBe(200);
  return pageHtml(shown);
}

/** A page showing a secret: 200 straight from the post, no redirect, never stored; the secret in no link or form of it. */
async function secretPage(r: Response): Promise<{ html: string; secret: string }> {
  expect(r.status, await r.clone().text()).toBe(200);
  expect(r.headers.get('location')).toBeNull();
  expect(r.headers.get('cache-control')).toBe('no-store');
  const html = await pageHtml(r);
  const secret = shownSecret(html)!;
  expect(secret).toBeTruthy();
  for (const [, url] of html.matchAll(/(?:href|action|src)="([^"]*)"/g)) expect(url).not.toContain(secret);
  expect(html).toContain('shown only this once');
  return { html, secret };
}

describe('Apps and machines: the clients', () => {
  it('lists clients with kind, authentication, first-party, disabled and created; filters by kind; audited as a listing', async () => {
    const { client: app } = await seedClient({ name: 'Filter App', firstParty: true });
    const { client: pub } = await seedClient({ name: 'Filter Public', kind: 'public', authMethod: 'none', redirectUris: ['http://127.0.0.1/cb'] });
    const { client: svc } = await seedClient({ name: 'Filter Service', grantTypes: ['client_credentials'], redirectUris: [], allowedScopes: [], disabledAt: now() });
    const all = await pageHtml(await browse(e, admin.jar, APPS));
    for (const k of [app, pub, svc]) expect(all).toContain(`data-client="${k.id}"`);
    const rowOf = (html: string, id: string) => new RegExp(`<tr data-client="${id}">([\\s\\S]*?)</tr>`).exec(html)![1]!;
    expect(rowOf(all, app.id)).toContain('first-party');
    expect(rowOf(all, app.id)).toContain('>app<');
    expect(rowOf(all, app.id)).toContain('client_secret_basic');
    expect(rowOf(all, pub.id)).toContain('>public<');
    expect(rowOf(all, pub.id)).toContain('>none<');
    expect(rowOf(all, svc.id)).toContain('>service<');
    expect(rowOf(all, svc.id)).toContain('disabled');
    expect(rowOf(all, svc.id)).toMatch(/<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/);
    const only = async (kind: string) => [...(await pageHtml(await browse(e, admin.jar, `${APPS}?kind=${kind}`))).matchAll(/data-client="([^"]+)"/g)].map((m) => m[1]);
    const apps = await only('app');
    expect(apps).toContain(app.id);
    expect(apps).not.toContain(pub.id);
    expect(apps).not.toContain(svc.id);
    expect(await only('public')).toEqual(expect.arrayContaining([pub.id]));
    expect(await only('public')).not.toContain(app.id);
    const services = await only('service');
    expect(services).toContain(svc.id);
    expect(services).not.toContain(app.id);
    expect(services).not.toContain(pub.id);
    const bad = await browse(e, admin.jar, `${APPS}?kind=robot`);
    expect(bad.status).toBe(400);
    expect(await pageHtml(bad)).toContain('must be app, public or service');
    expect((await auditRows('admin_clients_listed', admin.id)).some((d) => d.admin === admin.id && d.class === 'service')).toBe(true);
  });

  it("shows a client: redirect URIs, scopes, audiences, back-channel URI, and the secret's rotation state with the overlap's end; never a secret or hash", async () => {
    const overlapEnd = now() + 7200;
    const { client, secret } = await seedClient({
      name: 'Detail App',
      allowedAudiences: ['https://api.example.org/'],
      backchannelLogoutUri: 'https://app.example.org/logout',
      previousSecretHash: 'previous-hash',
      previousSecretExpiresAt: overlapEnd,
    });
    const html = await pageHtml(await browse(e, admin.jar, `${APPS}/clients/${client.id}`));
    for (const text of ['https://app.example.org/callback', 'https://app.example.org/', 'openid, profile, email, offline_access', 'https://api.example.org/', 'https://app.example.org/logout', client.id]) {
      expect(html).toContain(text);
    }
    expect(html).toContain(`the previous secret also works until <time datetime="${new Date(overlapEnd * 1000).toISOString()}">`);
    expect(html).not.toContain(secret);
    expect(html).not.toContain(client.secretHash!);
    expect(html).not.toContain('previous-hash');
    expect(await auditRows('admin_client_viewed', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, client_id: client.id }));
    const calm = await pageHtml(await browse(e, admin.jar, `${APPS}/clients/${(await seedClient()).client.id}`));
    expect(calm).toContain('Only the current secret works: no rotation overlap is running');
    const unknown = await browse(e, admin.jar, `${APPS}/clients/cli_nobody`);
    expect(unknown.status).toBe(404);
    expect(await pageHtml(unknown)).toContain('No such client.');
  });
});

describe('Apps and machines: registering a client', () => {
  const form = {
    name: 'Console Billing',
    kind: 'confidential',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: 'https://billing.example.org/callback\r\nhttps://billing.example.org/other',
    grant_authorization_code: 'on',
    grant_refresh_token: 'on',
    scope_openid: 'on',
    scope_email: 'on',
    allowed_audiences: 'https://api.example.org/billing',
    backchannel_logout_uri: 'https://billing.example.org/logout',
  };

  it('shows the form; every bad field is named on the form page, what was typed kept, and nothing is registered', async () => {
    const page = await browse(e, admin.jar, `${APPS}/clients/new`);
    expect(page.status).toBe(200);
    expect(await pageHtml(page)).toContain('name="redirect_uris"');
    const before = await countRows('oauth_clients');
    for (const confirm of [{}, { confirm: 'yes' }] as Record<string, string>[]) {
      // The fields' own rules first (each named), then the rules between fields and on each URI.
      const unread = await submit(e, admin.jar, `${APPS}/clients/new`, { ...form, ...confirm, name: '', jwks: '{not json' });
      expect(unread.status).toBe(400);
      const first = await pageHtml(unread);
      expect(first).toContain('id="form-error"');
      expect(first).toContain('nothing was registered');
      expect(first).toMatch(/id="client-name-error">must not be empty/);
      expect(first).toMatch(/id="client-jwks-error">must be JSON/);
      expect(first).toContain('{not json</textarea>');
      const r = await submit(e, admin.jar, `${APPS}/clients/new`, { ...form, ...confirm, redirect_uris: 'https://billing.example.org/callback\nhttp://billing.example.org/plain', backchannel_logout_uri: 'ftp://x.example.org/' });
      expect(r.status).toBe(400);
      const html = await pageHtml(r);
      expect(html).toContain('2 fields need a change');
      expect(html).toMatch(/id="client-redirects-error">“http:\/\/billing.example.org\/plain” must use https/);
      expect(html).toMatch(/id="client-backchannel-error">must use https/);
      // What was typed stays in the form.
      expect(html).toContain('http://billing.example.org/plain</textarea>');
      expect(html).toMatch(/name="grant_refresh_token" value="on" checked/);
      expect(html).not.toContain('name="confirm" value="yes"');
    }
    const rules = await submit(e, admin.jar, `${APPS}/clients/new`, { name: 'Public', kind: 'public', token_endpoint_auth_method: 'client_secret_basic', redirect_uris: 'http://127.0.0.1/cb', grant_authorization_code: 'on' });
    expect(rules.status).toBe(400);
    expect(await pageHtml(rules)).toMatch(/id="client-method-error">must be &quot;none&quot; for a public client/);
    expect(await countRows('oauth_clients')).toBe(before);
  });

  it('confirmed, registers it and shows its secret once on the answer itself: no redirect, no-store, in no URL; D1 keeps its hash; audited with the admin', async () => {
    const count = () => countRows('oauth_clients');
    const done = await confirmThenDo(`${APPS}/clients/new`, form, count);
    const { html, secret } = await secretPage(done);
    const id = /Client id: <code class="wrap">(cli_[^<]+)<\/code>/.exec(html)![1]!;
    const stored = (await clientRow(id))!;
    expect(stored).toMatchObject({ name: 'Console Billing', kind: 'confidential', auth_method: 'client_secret_basic', source: 'admin', backchannel_logout_uri: 'https://billing.example.org/logout' });
    expect(JSON.parse(String(stored.redirect_uris))).toEqual(['https://billing.example.org/callback', 'https://billing.example.org/other']);
    expect(JSON.parse(String(stored.allowed_scopes))).toEqual(['openid', 'email']);
    expect(JSON.parse(String(stored.allowed_audiences))).toEqual(['https://api.example.org/billing']);
    expect(stored.secret_hash).toBe(await sha256(secret));
    expect(await auditRows('admin_client_created', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, client_id: id }));
    // The secret authenticates the client; the client's page never shows it again.
    expect((await authenticateAt({ grant_type: 'client_credentials' }, { authorization: basic(id, secret), env: e })).status).not.toBe(401);
    const after = await pageHtml(await browse(e, admin.jar, `${APPS}/clients/${id}`));
    expect(after).not.toContain(secret);
  });

  it('a client without a secret (public) is registered and its page shows the notice', async () => {
    const done = await confirmThenDo(
      `${APPS}/clients/new`,
      { name: 'Console Native', kind: 'public', token_endpoint_auth_method: 'none', redirect_uris: 'com.example.native:/cb', grant_authorization_code: 'on', scope_openid: 'on' },
      () => countRows('oauth_clients'),
    );
    const location = done.headers.get('location')!;
    const html = await afterNotice(done, location.split('?')[0]!);
    expect(notice(html)).toContain('It has no secret');
    expect((await clientRow(location.split('/').pop()!.split('?')[0]!))!).toMatchObject({ kind: 'public', auth_method: 'none', secret_hash: null });
  });
});

describe('Apps and machines: rotating, disabling and enabling a client', () => {
  it('rotates with the overlap the admin chose: the new secret shown once, the old one working until the overlap ends; audited', async () => {
    const { client, secret: old } = await seedClient();
    const path = `${APPS}/clients/${client.id}/rotate-secret`;
    const done = await confirmThenDo(path, { overlap_seconds: '3600' }, async () => (await clientRow(client.id))!.secret_hash);
    const { html, secret } = await secretPage(done);
    expect(secret).not.toBe(old);
    const stored = (await clientRow(client.id))!;
    expect(stored.secret_hash).toBe(await sha256(secret));
    expect(stored.previous_secret_hash).toBe(await sha256(old));
    expect(Number(stored.previous_secret_expires_at)).toBeGreaterThanOrEqual(now() + 3590);
    expect(html).toContain(`The previous secret works until <time datetime="${new Date(Number(stored.previous_secret_expires_at) * 1000).toISOString()}"`);
    for (const s of [old, secret]) expect((await authenticateAt({ grant_type: 'client_credentials' }, { authorization: basic(client.id, s), env: e })).status).not.toBe(401);
    expect(await auditRows('admin_client_secret_rotated', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, client_id: client.id, overlap_seconds: 3600 }));
    const page = await pageHtml(await browse(e, admin.jar, `${APPS}/clients/${client.id}`));
    expect(page).toContain('Rotated: the previous secret also works until');
    expect(page).not.toContain(secret);
  });

  it('with no overlap the old secret stops at once; a bad overlap is a 400 page; a client without a secret has none to rotate', async () => {
    const { client, secret: old } = await seedClient();
    const { secret } = await secretPage(await confirmed(`${APPS}/clients/${client.id}/rotate-secret`, { overlap_seconds: '0' }));
    expect((await authenticateAt({ grant_type: 'client_credentials' }, { authorization: basic(client.id, old), env: e })).status).toBe(401);
    expect((await clientRow(client.id))!).toMatchObject({ secret_hash: await sha256(secret), previous_secret_hash: null, previous_secret_expires_at: null });
    for (const overlap of ['2592001', 'soon', '-1']) {
      const r = await submit(e, admin.jar, `${APPS}/clients/${client.id}/rotate-secret`, { overlap_seconds: overlap, confirm: 'yes' });
      expect(r.status, overlap).toBe(400);
      expect(await pageHtml(r)).toContain('overlap_seconds');
    }
    expect((await clientRow(client.id))!.secret_hash).toBe(await sha256(secret));
    const { client: pub } = await seedClient({ kind: 'public', authMethod: 'none', redirectUris: ['http://127.0.0.1/cb'] });
    const none = await confirmed(`${APPS}/clients/${pub.id}/rotate-secret`, { overlap_seconds: '0' });
    expect(none.status).toBe(409);
    expect(await pageHtml(none)).toContain('it has no secret to rotate');
  });

  it('posting the confirmation again (a reload of the page showing the secret) rotates nothing: 409, and the secret shown still works', async () => {
    const { client } = await seedClient();
    const path = `${APPS}/clients/${client.id}/rotate-secret`;
    const ask = await submit(e, admin.jar, path, { overlap_seconds: '0' });
    const fields = confirmationFields(await ask.text());
    expect(fields).toMatchObject({ overlap_seconds: '0', confirm: 'yes', from: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) });
    expect(fields.from).not.toContain(client.secretHash!.slice(0, 8));
    const { secret } = await secretPage(await submit(e, admin.jar, path, fields));
    const again = await submit(e, admin.jar, path, fields);
    expect(again.status).toBe(409);
    expect(await pageHtml(again)).toContain('nothing was rotated');
    expect((await clientRow(client.id))!.secret_hash).toBe(await sha256(secret));
    // A confirmation that names no secret rotates nothing either.
    const { from: _, ...unnamed } = fields;
    expect((await submit(e, admin.jar, path, unnamed)).status).toBe(409);
    expect((await clientRow(client.id))!.secret_hash).toBe(await sha256(secret));
    // The same for a SCIM token.
    const t = await seedScimToken();
    const tokenAsk = await submit(e, admin.jar, `${APPS}/scim-tokens/${t.id}/rotate`, { overlap_seconds: '0' });
    const tokenFields = confirmationFields(await tokenAsk.text());
    const { secret: token } = await secretPage(await submit(e, admin.jar, `${APPS}/scim-tokens/${t.id}/rotate`, tokenFields));
    expect((await submit(e, admin.jar, `${APPS}/scim-tokens/${t.id}/rotate`, tokenFields)).status).toBe(409);
    expect((await scim('GET', '/Users', undefined, { env: e, token })).status).toBe(200);
  });

  it('disables (refused at once, its token epoch moved) and enables it again, each confirmed, audited and shown', async () => {
    const { client, secret } = await seedClient();
    const page = `${APPS}/clients/${client.id}`;
    const state = async () => {
      const r = (await clientRow(client.id))!;
      return [r.disabled_at, r.token_epoch];
    };
    const disabled = await afterNotice(await confirmThenDo(`${page}/disable`, {}, state), page);
    expect(notice(disabled)).toContain('The client is disabled');
    expect(disabled).toContain('id="enable"');
    const stored = (await clientRow(client.id))!;
    expect(stored.disabled_at).not.toBeNull();
    expect(stored.token_epoch).not.toBe(client.tokenEpoch);
    expect((await authenticateAt({ grant_type: 'client_credentials' }, { authorization: basic(client.id, secret), env: e })).status).toBe(401);
    expect(await auditRows('admin_client_disabled', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, client_id: client.id }));

    const enabled = await afterNotice(await confirmThenDo(`${page}/enable`, {}, state), page);
    expect(notice(enabled)).toContain('The client is enabled');
    expect((await clientRow(client.id))!.disabled_at).toBeNull();
    expect(await auditRows('admin_client_enabled', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, client_id: client.id }));
  });
});

describe('Apps and machines: SCIM tokens', () => {
  it('lists tokens without secrets; creates one, confirmed, shown once and working at the SCIM endpoint; audited', async () => {
    const seeded = await seedScimToken({ name: 'Listed directory', lastUsedAt: now() - 60 });
    const list = await pageHtml(await browse(e, admin.jar, `${APPS}/scim-tokens`));
    expect(list).toContain(`data-token="${seeded.id}"`);
    expect(list).toContain('Listed directory');
    expect(list).not.toContain(seeded.text.split('.')[1]!);
    expect(list).not.toContain(seeded.secretHash);

    const done = await confirmThenDo(`${APPS}/scim-tokens/new`, { name: 'Okta production' }, () => countRows('scim_tokens'));
    const { secret: token } = await secretPage(done);
    expect(token).toMatch(/^scim_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    const [id, secret] = token.split('.') as [string, string];
    expect((await tokenRow(id))!).toMatchObject({ name: 'Okta production', secret_hash: await sha256(secret), created_by: admin.id });
    expect((await scim('GET', '/Users', undefined, { env: e, token })).status).toBe(200);
    expect(await auditRows('admin_scim_token_created', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, scim_token_id: id }));
    expect(await pageHtml(await browse(e, admin.jar, `${APPS}/scim-tokens/${id}`))).not.toContain(secret);

    const bad = await submit(e, admin.jar, `${APPS}/scim-tokens/new`, { name: '  ', confirm: 'yes' });
    expect(bad.status).toBe(400);
    expect(await pageHtml(bad)).toContain('must not be empty');
  });

  it('rotates with the chosen overlap (the new token shown once, the old one working until then), disables, enables and deletes, each confirmed and audited', async () => {
    const t = await seedScimToken({ name: 'Rotating directory' });
    const page = `${APPS}/scim-tokens/${t.id}`;
    const state = async () => tokenRow(t.id);
    const { html, secret: fresh } = await secretPage(await confirmThenDo(`${page}/rotate`, { overlap_seconds: '86400' }, state));
    expect(fresh.split('.')[0]).toBe(t.id);
    expect(html).toContain('The previous token works until');
    for (const token of [t.text, fresh]) expect((await scim('GET', '/Users', undefined, { env: e, token })).status).toBe(200);
    expect(await auditRows('admin_scim_token_rotated', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, scim_token_id: t.id, overlap_seconds: 86400 }));
    expect(await pageHtml(await browse(e, admin.jar, page))).toContain('The previous token also works until');

    const disabled = await afterNotice(await confirmThenDo(`${page}/disable`, {}, state), page);
    expect(notice(disabled)).toContain('The SCIM token is disabled');
    expect((await scim('GET', '/Users', undefined, { env: e, token: fresh })).status).toBe(401);
    expect(await auditRows('admin_scim_token_disabled', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, scim_token_id: t.id }));

    const enabled = await afterNotice(await confirmThenDo(`${page}/enable`, {}, state), page);
    expect(notice(enabled)).toContain('The SCIM token is enabled');
    expect((await scim('GET', '/Users', undefined, { env: e, token: fresh })).status).toBe(200);
    expect(await auditRows('admin_scim_token_enabled', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, scim_token_id: t.id }));

    const deleted = await afterNotice(await confirmThenDo(`${page}/delete`, {}, state), `${APPS}/scim-tokens`);
    expect(notice(deleted)).toContain('The SCIM token is deleted');
    expect(await tokenRow(t.id)).toBeNull();
    expect(await auditRows('admin_scim_token_deleted', admin.id)).toContainEqual(expect.objectContaining({ admin: admin.id, scim_token_id: t.id }));
    expect((await browse(e, admin.jar, page)).status).toBe(404);
  });
});

describe('Apps and machines: consent grants', () => {
  /** A user who allowed `client` (openid email) and holds two grants of it and one of another app. */
  async function userWithConsent() {
    const user = await plainSession(e, false);
    const sid = decodeJwt(user.jar['__Host-gatehouse']!).sid as string;
    const { client } = await seedClient({ name: 'Consented Notes' });
    const { client: other } = await seedClient({ name: 'Other App' });
    const t = now();
    await sessionsObject(user.id).grantConsent(user.id, client.id, ['openid', 'email'], [], t);
    await sessionsObject(user.id).grantConsent(user.id, other.id, ['openid'], [], t);
    for (const [clientId, gid] of [[client.id, `grt_a${client.id}`], [client.id, `grt_b${client.id}`], [other.id, `grt_c${other.id}`]] as const) {
      await sessionExec(
        'INSERT INTO oauth_grants (id, session_id, client_id, scope, resource, refresh_hash, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL)',
        [gid, sid, clientId, 'openid', `hash-${gid}`, t, t + 3600, t],
        user.id,
      );
    }
    return { user, client, other };
  }

  it("finds a user's consents by address: which app, which scopes, since when; an unknown address is named", async () => {
    const { user, client } = await userWithConsent();
    const html = await pageHtml(await browse(e, admin.jar, `${APPS}/consents?email=${encodeURIComponent(user.email)}`));
    const row = new RegExp(`<tr data-consent="${client.id}">([\\s\\S]*?)</tr>`).exec(html)![1]!;
    expect(row).toContain('Consented Notes');
    expect(row).toContain('email, openid');
    expect(row).toMatch(/<time datetime="/);
    expect(row).toContain(`${APPS}/consents/${user.id}/${client.id}/revoke`);
    expect(await pageHtml(await browse(e, admin.jar, `${APPS}/consents/${user.id}`))).toContain(`data-consent="${client.id}"`);
    const unknown = await browse(e, admin.jar, `${APPS}/consents?email=nobody%40example.org`);
    expect(unknown.status).toBe(404);
    expect(await pageHtml(unknown)).toContain('No user has this address.');
  });

  it("looking at a user's consents is recorded naming the admin, as looking at the user is; an unknown address records nothing", async () => {
    const { user } = await userWithConsent();
    expect(await auditRows('admin_consents_viewed', user.id)).toEqual([]);
    await pageHtml(await browse(e, admin.jar, `${APPS}/consents?email=${encodeURIComponent(user.email)}`));
    expect(await auditRows('admin_consents_viewed', user.id)).toEqual([{ admin: admin.id }]);
    await pageHtml(await browse(e, admin.jar, `${APPS}/consents/${user.id}`));
    expect(await auditRows('admin_consents_viewed', user.id)).toEqual([{ admin: admin.id }, { admin: admin.id }]);
    const before = await countRows('auth_events', "event = 'admin_consents_viewed'");
    expect((await browse(e, admin.jar, `${APPS}/consents?email=nobody-here%40example.org`)).status).toBe(404);
    expect(await countRows('auth_events', "event = 'admin_consents_viewed'")).toBe(before);
  });

  it('an app known by its metadata document URL is not shown as no longer registered, and its consent is revoked by that URL', async () => {
    const user = await plainSession(e, false);
    const url = 'https://notes.example.org/oauth/client.json';
    const { client: gone } = await seedClient({ name: 'Gone App' });
    await sessionsObject(user.id).grantConsent(user.id, url, ['openid'], [], now());
    await sessionsObject(user.id).grantConsent(user.id, gone.id, ['openid'], [], now());
    await env.DB.prepare('DELETE FROM oauth_clients WHERE id = ?').bind(gone.id).run();
    const html = await pageHtml(await browse(e, admin.jar, `${APPS}/consents/${user.id}`));
    const row = (id: string) => new RegExp(`<tr data-consent="${id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}">([\\s\\S]*?)</tr>`).exec(html)![1]!;
    expect(row(url)).not.toContain('no longer registered');
    expect(row(gone.id)).toContain('no longer registered');
    const page = `${APPS}/consents/${user.id}`;
    await afterNotice(await confirmed(`${page}/${encodeURIComponent(url)}/revoke`, {}), page);
    expect(await sessionRow('SELECT * FROM oauth_consents WHERE client_id = ?', [url], user.id)).toBeNull();
  });

  it("revokes a consent, confirmed: the consent goes and the app's grants end in the user's object and in KV, other apps keep theirs; audited with the admin", async () => {
    const { user, client, other } = await userWithConsent();
    const page = `${APPS}/consents/${user.id}`;
    const state = async () => [await sessionRows('SELECT * FROM oauth_consents ORDER BY client_id', [], user.id), await sessionRows('SELECT id, revoked_at FROM oauth_grants ORDER BY id', [], user.id)];
    const html = await afterNotice(await confirmThenDo(`${page}/${client.id}/revoke`, {}, state), page);
    expect(notice(html)).toContain('The consent is withdrawn');
    expect(html).not.toContain(`data-consent="${client.id}"`);
    expect(html).toContain(`data-consent="${other.id}"`);
    expect(await sessionRow('SELECT * FROM oauth_consents WHERE client_id = ?', [client.id], user.id)).toBeNull();
    const grants = await sessionRows<{ id: string; revoked_at: number | null }>('SELECT id, revoked_at FROM oauth_grants ORDER BY id', [], user.id);
    expect(grants.filter((g) => g.revoked_at !== null).map((g) => g.id).sort()).toEqual([`grt_a${client.id}`, `grt_b${client.id}`].sort());
    for (const gid of [`grt_a${client.id}`, `grt_b${client.id}`]) expect(await env.REVOKED.get(`sid:${gid}`)).toBe('1');
    expect(await env.REVOKED.get(`sid:grt_c${other.id}`)).toBeNull();
    expect(await auditRows('admin_consent_revoked', user.id)).toEqual([expect.objectContaining({ admin: admin.id, client_id: client.id, grants: 2 })]);
    // Again: nothing left to revoke.
    expect((await submit(e, admin.jar, `${page}/${client.id}/revoke`, { confirm: 'yes' })).status).toBe(404);
  });
});
