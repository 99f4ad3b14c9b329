/**
 * MFA_REQUIRED_ROLES: users holding such a role set up a second factor at their next sign-in
 * (no token until they have), and the admin API refuses their tokens without amr "mfa". The
 * admin API can reset a user's factors (audited).
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { bearer, call, countRows, GOOD_PASSWORD, makeEnv, registerUser, seedUser, setCookies, uniqueEmail } from '../support/helpers';
import { ENCRYPTION_KEY, mfaEnv, NAV, recoveryCodesFromPage, secretFromPage, totpCode, userWithTotp } from '../support/second-factor-helpers';

const e = mfaEnv({ MFA_REQUIRED_ROLES: 'admin' });

async function withRoles(userId: string, roles: string[]) {
  await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(roles), userId).run();
}

describe('MFA_REQUIRED_ROLES', () => {
  it('an admin without a factor gets no token at sign-in; API clients set one up through /mfa/enrol and /mfa', async () => {
    const email = uniqueEmail('must-enrol');
    const t = await registerUser(email, undefined, e);
    await withRoles(t.user.id, ['admin']);
    const sessionsBefore = await countRows('sessions', 'user_id = ?', t.user.id);
    const r = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(401);
    const body = (await r.json()) as { error: string; enrolment_required: boolean; mfa_token: string };
    expect(body).toMatchObject({ error: 'mfa_required', enrolment_required: true });
    expect(body).not.toHaveProperty('access_token');
    expect(await countRows('sessions', 'user_id = ?', t.user.id)).toBe(sessionsBefore);

    const enrol = await call('/auth/mfa/enrol', { env: e, json: { mfa_token: body.mfa_token } });
    expect(enrol.status).toBe(200);
    const { secret, otpauth_uri } = (await enrol.json()) as { secret: string; otpauth_uri: string };
    expect(otpauth_uri).toMatch(/^otpauth:\/\/totp\/Gatehouse:.+\?.*secret=/);
    const wrong = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(secret, -3) } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_credentials' });
    const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate();
    const done = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code } });
    expect(done.status).toBe(200);
    const tokens = (await done.json()) as { access_token: string; recovery_codes: string[] };
    expect(decodeJwt(tokens.access_token).amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(tokens.recovery_codes).toHaveLength(10);
    expect(await env.DB.prepare('SELECT confirmed_at FROM totp_factors WHERE user_id = ?').bind(t.user.id).first('confirmed_at')).not.toBeNull();
    // It is a normal second factor from now on.
    const next = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } });
    expect(await next.json()).toMatchObject({ error: 'mfa_required', enrolment_required: false });
  });

  it('a browser is led through setting up the app at sign-in, sees its recovery codes, and is signed in', async () => {
    const email = uniqueEmail('must-enrol-browser');
    const t = await registerUser(email, undefined, e);
    await withRoles(t.user.id, ['admin']);
    const first = await call('/auth/login', { env: e, headers: NAV, form: { email, password: GOOD_PASSWORD, return_to: '/dashboard' } });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/auth/mfa');
    const cookies = { '__Host-gatehouse-mfa': setCookies(first).get('__Host-gatehouse-mfa')!.value };
    const page = await call('/auth/mfa', { env: e, cookies, headers: NAV });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('needs a second factor before you can sign in');
    expect(html).toContain('<svg');
    const secret = secretFromPage(html);
    // Reloading the page shows the same key (the set-up in progress), not a new one.
    expect(secretFromPage(await (await call('/auth/mfa', { env: e, cookies, headers: NAV })).text())).toBe(secret);
    const done = await call('/auth/mfa', { env: e, cookies, headers: NAV, form: { code: totpCode(secret) } });
    expect(done.status).toBe(200);
    const after = await done.text();
    expect(recoveryCodesFromPage(after)).toHaveLength(10);
    expect(after).toContain('<form method="get" action="/dashboard" id="codes-continue">');
    expect(decodeJwt(setCookies(done).get('__Host-gatehouse')!.value).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('users without the role sign in as before', async () => {
    const email = uniqueEmail('plain');
    await seedUser({ email });
    const r = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(200);
  });

  it('needs TOKEN_ENCRYPTION_KEY in production', () => {
    const result = parseConfig({ ...makeEnv(), MFA_REQUIRED_ROLES: 'admin' });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.setting).toBe('TOKEN_ENCRYPTION_KEY');
    expect(parseConfig({ ...makeEnv(), MFA_REQUIRED_ROLES: 'admin', TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY }).ok).toBe(true);
  });
});

describe('the admin API', () => {
  it('refuses an admin token without amr mfa when the role requires it (401 insufficient_user_authentication), admits one with it', async () => {
    const admin = await registerUser(undefined, undefined, e); // signed in before becoming admin: amr ["pwd"]
    await withRoles(admin.user.id, ['admin']);
    const r = await call('/auth/admin/users', { env: e, headers: bearer(admin.access_token) });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('acr_values="mfa"');
    expect(await r.json()).toMatchObject({ error: 'insufficient_user_authentication', acr_values: 'mfa' });
    // The same token on a gateway without the setting: admitted.
    expect((await call('/auth/admin/users', { env: mfaEnv(), headers: bearer(admin.access_token) })).status).toBe(200);

    const u = await userWithTotp(e);
    await withRoles(u.userId, ['admin']);
    const login = await call('/auth/login', { env: e, json: { email: u.email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await login.json()) as { mfa_token: string };
    const done = await call('/auth/mfa', { env: e, json: { mfa_token, code: totpCode(u.secret, 1) } });
    const { access_token } = (await done.json()) as { access_token: string };
    expect((await call('/auth/admin/users', { env: e, headers: bearer(access_token) })).status).toBe(200);
  });

  it('resets a user\'s second factors, audited with the admin\'s id; the user then signs in with the password alone', async () => {
    const plain = mfaEnv();
    const admin = await registerUser(undefined, undefined, plain);
    await withRoles(admin.user.id, ['admin']);
    const u = await userWithTotp(plain);
    const r = await call(`/auth/admin/users/${u.userId}/second-factors`, { env: plain, method: 'DELETE', headers: bearer(admin.access_token) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, removed: { totp: true, passkeys: 0, recovery_codes: 10 } });
    expect(await countRows('totp_factors', 'user_id = ?', u.userId)).toBe(0);
    expect(await countRows('recovery_codes', 'user_id = ?', u.userId)).toBe(0);
    const audit = await env.DB.prepare("SELECT detail FROM auth_events WHERE event = 'admin_second_factors_reset' AND user_id = ?").bind(u.userId).first<string>('detail');
    expect(JSON.parse(audit!)).toMatchObject({ admin: admin.user.id, totp: true, recovery_codes: 10 });
    expect((await call('/auth/login', { env: plain, json: { email: u.email, password: GOOD_PASSWORD } })).status).toBe(200);
    // A non-admin cannot.
    const someone = await registerUser(undefined, undefined, plain);
    const refused = await call(`/auth/admin/users/${u.userId}/second-factors`, { env: plain, method: 'DELETE', headers: bearer(someone.access_token) });
    expect(refused.status).toBe(403);
  });
});
