/**
 * The console's Users area: search with pages, one user's page, and each action: unconfirmed it
 * changes nothing; confirmed it acts, is audited with the acting admin (the JSON API's own
 * events), and comes back to the user's page with its notice. Bad input gets a clear page.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { countRows, seedUser, type TestEnv } from '../support/helpers';
import { lastMailFor, uniqueEmail } from '../support/mail';
import { userWithTotp, type Jar } from '../support/second-factor-helpers';
import { adminWithSecondFactor, auditRows, browse, consoleEnv, pageHtml, plainSession, setStoredRoles, submit, userState } from './console-support';

const USERS = '/auth/admin/console/users';

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  e = consoleEnv();
  admin = await adminWithSecondFactor(e);
});

/** Posts an action unconfirmed (nothing may change), then confirmed; returns the confirmed answer's page after its redirect. */
async function confirmAndDo(userId: string, action: string, fields: Record<string, string> = {}) {
  const before = await userState(userId);
  const ask = await submit(e, admin.jar, `${USERS}/${userId}/${action}`, fields);
  expect(ask.status, await ask.clone().text()).toBe(200);
  const askHtml = await pageHtml(ask);
  expect(askHtml).toContain('Please confirm');
  expect(askHtml).toContain('name="confirm" value="yes"');
  expect(await userState(userId), 'nothing changes before the confirmation').toEqual(before);

  const done = await submit(e, admin.jar, `${USERS}/${userId}/${action}`, { ...fields, confirm: 'yes' });
  expect(done.status, await done.clone().text()).toBe(303);
  const location = done.headers.get('location')!;
  expect(location).toMatch(new RegExp(`^${USERS}/${userId}\\?done=[a-z_]+$`));
  const page = await browse(e, admin.jar, location);
  expect(page.status).toBe(200);
  return pageHtml(page);
}

const notice = (html: string) => /<p class="banner" role="status" id="notice">([^<]*)<\/p>/.exec(html)?.[1] ?? null;

describe('the Users area: finding users', () => {
  it('searches by email or name, 25 a page, with links to the next and previous pages', async () => {
    const tag = `pager${Date.now().toString(36)}`;
    for (let i = 0; i < 27; i++) await seedUser({ email: uniqueEmail(`${tag}-${i}`) });
    const named = await seedUser({ name: `Ada ${tag}` });
    const first = await pageHtml(await browse(e, admin.jar, `${USERS}?q=${tag}`));
    expect(first.match(/data-user="/g)).toHaveLength(25);
    expect(first).toContain(`href="${USERS}?q=${tag}&amp;page=2"`);
    expect(first).not.toContain('rel="prev"');
    const second = await pageHtml(await browse(e, admin.jar, `${USERS}?q=${tag}&page=2`));
    expect(second.match(/data-user="/g)).toHaveLength(3);
    expect(second).toContain(`href="${USERS}?q=${tag}&amp;page=1"`);
    expect(second).not.toContain('rel="next"');
    const byName = await pageHtml(await browse(e, admin.jar, `${USERS}?q=${encodeURIComponent(`Ada ${tag}`)}`));
    expect(byName.match(/data-user="([^"]+)"/g)).toEqual([`data-user="${named.id}"`]);
    const none = await pageHtml(await browse(e, admin.jar, `${USERS}?q=%25`));
    expect(none).toContain('id="no-users"'); // a literal %, not a wildcard
    expect(await countRows('auth_events', "event = 'admin_users_listed' AND user_id = ?", admin.id)).toBeGreaterThanOrEqual(4);
  });

  it('answers bad input with a clear page: an overlong query or a bad page number is 400, an unknown user 404', async () => {
    const long = await browse(e, admin.jar, `${USERS}?q=${'a'.repeat(255)}`);
    expect(long.status).toBe(400);
    expect(await pageHtml(long)).toContain('is too long');
    for (const page of ['0', 'x', '99999']) expect((await browse(e, admin.jar, `${USERS}?page=${page}`)).status, page).toBe(400);
    const unknown = await browse(e, admin.jar, `${USERS}/usr_nope`);
    expect(unknown.status).toBe(404);
    expect(await pageHtml(unknown)).toContain('No such user.');
    expect((await browse(e, admin.jar, `${USERS}/${'x'.repeat(300)}`)).status).toBe(404);
    const post = await submit(e, admin.jar, `${USERS}/usr_nope/disable`, { confirm: 'yes' });
    expect(post.status).toBe(404);
    const badRole = await submit(e, admin.jar, `${USERS}/${admin.id}/roles/grant`, { role_name: 'no spaces' });
    expect(badRole.status).toBe(400);
    expect(await pageHtml(badRole)).toContain('The role name must be');
  });
});

describe('the Users area: one user', () => {
  it('shows identities, factors, passkeys, sessions with device and place, groups, roles and recent events', async () => {
    const u = await userWithTotp(e, uniqueEmail('console-viewed'));
    await setStoredRoles(u.userId, ['auditor']);
    const html = await pageHtml(await browse(e, admin.jar, `${USERS}/${u.userId}`));
    expect(html).toContain(u.email);
    expect(html).toMatch(/id="totp">Authenticator app: on \(10 recovery codes left\)/);
    expect(html).toContain('id="no-passkeys"');
    expect(html).toMatch(/data-session="ses_[^"]+"/);
    expect(html).toContain('203.0.113.7');
    expect(html).toContain('data-role="auditor"');
    expect(html).toContain('data-event="totp_enrolled"');
    expect(html).toContain('id="group-list"');
    expect(html).not.toMatch(/refresh_hash|password_hash|\$scrypt/);
    expect(await auditRows('admin_user_viewed', u.userId)).toEqual([{ admin: admin.id }]);
  });
});

describe('the Users area: actions, confirmed, audited, shown', () => {
  it('disables (every session ends) and enables again', async () => {
    const target = await plainSession(e, false);
    const html = await confirmAndDo(target.id, 'disable');
    expect(notice(html)).toBe('The user is disabled and every session of theirs has ended.');
    expect((await userState(target.id)).user).toMatchObject({ disabled_at: expect.any(Number) });
    expect((await userState(target.id)).liveSessions).toBe(0);
    expect(await auditRows('admin_user_disabled', target.id)).toEqual([{ admin: admin.id, ended_sessions: 1 }]);
    expect((await browse(e, target.jar, '/auth/account')).status).not.toBe(200);

    const enabled = await confirmAndDo(target.id, 'enable');
    expect(notice(enabled)).toBe('The user is enabled: they can sign in again.');
    expect((await userState(target.id)).user).toMatchObject({ disabled_at: null });
    expect(await auditRows('admin_user_enabled', target.id)).toEqual([{ admin: admin.id }]);
  });

  it('signs a user out everywhere, leaving the account enabled', async () => {
    const target = await plainSession(e, false);
    const html = await confirmAndDo(target.id, 'sign-out');
    expect(notice(html)).toBe('Every session of the user has ended.');
    expect((await userState(target.id)).liveSessions).toBe(0);
    expect((await userState(target.id)).user).toMatchObject({ disabled_at: null });
    expect(await auditRows('admin_sessions_ended', target.id)).toEqual([{ admin: admin.id, ended_sessions: 1 }]);
  });

  it('resets second factors (the user is mailed a notice)', async () => {
    const u = await userWithTotp(e, uniqueEmail('console-lost-phone'));
    const html = await confirmAndDo(u.userId, 'second-factors/reset');
    expect(notice(html)).toContain('authenticator app, passkeys and recovery codes are removed');
    expect(await countRows('totp_factors', 'user_id = ?', u.userId)).toBe(0);
    expect(await countRows('recovery_codes', 'user_id = ?', u.userId)).toBe(0);
    const [row] = await auditRows('admin_second_factors_reset', u.userId);
    expect(row).toMatchObject({ admin: admin.id, totp: true });
    await expect.poll(async () => (await lastMailFor(u.email)).subject).toMatch(/second factor|sign-in/i);
  });

  it('mails a password reset link', async () => {
    const target = await plainSession(e, false);
    const html = await confirmAndDo(target.id, 'password-reset');
    expect(notice(html)).toBe('A password reset link is on its way to the user.');
    expect(await auditRows('admin_password_reset_sent', target.id)).toEqual([{ admin: admin.id }]);
    expect((await lastMailFor(target.email)).text).toContain('/auth/password/reset');
  });

  it('grants and revokes a role', async () => {
    const target = await plainSession(e, false);
    const granted = await confirmAndDo(target.id, 'roles/grant', { role_name: 'auditor' });
    expect(notice(granted)).toContain('The role is granted.');
    expect(granted).toContain('data-role="auditor"');
    expect((await userState(target.id)).user).toMatchObject({ roles: '["auditor"]' });
    expect(await auditRows('admin_role_granted', target.id)).toEqual([{ admin: admin.id, role: 'auditor' }]);

    const revoked = await confirmAndDo(target.id, 'roles/revoke', { role_name: 'auditor' });
    expect(notice(revoked)).toContain('The role is revoked.');
    expect((await userState(target.id)).user).toMatchObject({ roles: '[]' });
    expect(await auditRows('admin_role_revoked', target.id)).toEqual([{ admin: admin.id, role: 'auditor' }]);
  });

  it('granting admin is confirmed as making an administrator (a danger button saying so); another role, or a look-alike such as ADMIN, is not', async () => {
    const target = await plainSession(e, false);
    const before = await userState(target.id);
    const ask = await pageHtml(await submit(e, admin.jar, `${USERS}/${target.id}/roles/grant`, { role_name: 'admin' }));
    expect(ask).toContain('becomes an administrator');
    expect(ask).toMatch(/class="button danger"[^>]*>\s*Make .* an administrator/);
    for (const role_name of ['auditor', 'ADMIN']) {
      const other = await pageHtml(await submit(e, admin.jar, `${USERS}/${target.id}/roles/grant`, { role_name }));
      expect(other, role_name).not.toContain('becomes an administrator');
      expect(other, role_name).toContain('class="button secondary"');
    }
    expect(await userState(target.id), 'nothing changes before the confirmation').toEqual(before);
  });

  it('refuses what the JSON API refuses: disabling yourself, revoking your own admin role (409 pages, nothing changes)', async () => {
    const before = await userState(admin.id);
    for (const [action, fields] of [['disable', {}], ['roles/revoke', { role_name: 'admin' }]] as const) {
      const r = await submit(e, admin.jar, `${USERS}/${admin.id}/${action}`, { ...fields, confirm: 'yes' });
      expect(r.status, action).toBe(409);
      expect(await pageHtml(r)).toContain('You cannot');
    }
    expect(await userState(admin.id)).toEqual(before);
  });

  it('the notice comes only from the area’s own list', async () => {
    const target = await seedUser();
    for (const done of ['constructor', '<script>', 'nope']) {
      const html = await pageHtml(await browse(e, admin.jar, `${USERS}/${target.id}?done=${encodeURIComponent(done)}`));
      expect(notice(html), done).toBeNull();
    }
    expect(await env.DB.prepare('SELECT 1 FROM users WHERE id = ?').bind(target.id).first()).not.toBeNull();
  });
});
