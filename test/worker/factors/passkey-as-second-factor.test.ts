/**
 * A passkey as a second factor: a passkey is a second factor (the
 * pending state, the mfa page and its JSON twin, step-up, MFA_REQUIRED_ROLES), a passkey sign-in
 * goes through the same policy, recovery codes belong to "has any second factor", an admin reset
 * removes passkeys too, notice mails, and housekeeping of the factors' short-lived rows.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { runHousekeeping } from '../../../src/scheduled/housekeeping';
import { bearer, call, countRows, GOOD_PASSWORD, registerUser, type TestEnv, type TokenResponse } from '../support/helpers';
import { failMailFor, mailEnv, mailFor, recoverMail, uniqueEmail } from '../support/mail';
import { FLAGS, postJson, SoftAuthenticator, type AuthenticationOptions, type RegistrationOptions } from '../support/passkeys-helpers';
import { ENCRYPTION_KEY, mfaEnv, NAV, totpCode, updateJar, userWithTotp, type Jar } from '../support/second-factor-helpers';

const e = mfaEnv();
const UP_ONLY = FLAGS.UP;

/** Registers a passkey with a bearer token or a cookie jar; returns the authenticator and the answer. */
async function addPasskey(testEnv: TestEnv, who: { token?: string; jar?: Jar }) {
  const opts = { env: testEnv, ...(who.token ? { headers: bearer(who.token) } : { cookies: who.jar }) };
  const o = (await postJson('/auth/passkeys/register/options', {}, opts)).body as unknown as RegistrationOptions;
  const auth = await SoftAuthenticator.create();
  const r = await postJson('/auth/passkeys/register', { credential: await auth.register(o) }, opts);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { auth, body: r.body as { recovery_codes?: string[] } };
}

/** A password user with only a passkey as second factor. */
async function passkeyUser(testEnv: TestEnv = e, email = uniqueEmail('pk')) {
  const user = await registerUser(email, GOOD_PASSWORD, testEnv);
  const { auth, body } = await addPasskey(testEnv, { token: user.access_token });
  return { user, auth, email, codes: body.recovery_codes ?? [] };
}

async function passwordStep(email: string, testEnv: TestEnv = e) {
  const r = await call('/auth/login', { env: testEnv, json: { email, password: GOOD_PASSWORD } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function mfaPasskeyOptions(mfaToken: string, testEnv: TestEnv = e) {
  const r = await postJson('/auth/mfa/passkey/options', { mfa_token: mfaToken }, { env: testEnv });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as unknown as AuthenticationOptions;
}

async function loginOptions(testEnv: TestEnv = e) {
  return (await postJson('/auth/passkeys/login/options', {}, { env: testEnv })).body as unknown as AuthenticationOptions;
}

describe('a passkey is a second factor', () => {
  it('a user with only a passkey gets the pending state after a password; the passkey completes it (amr pwd+hwk+mfa)', async () => {
    const u = await passkeyUser();
    const sessions = await countRows('sessions', 'user_id = ?', u.user.user.id);
    const step = await passwordStep(u.email);
    expect(step.status).toBe(401);
    expect(step.body).toMatchObject({ error: 'mfa_required', enrolment_required: false });
    expect(step.body).not.toHaveProperty('access_token');
    const mfaToken = step.body.mfa_token as string;

    const o = await mfaPasskeyOptions(mfaToken);
    expect(o.allowCredentials?.map((c) => c.id)).toEqual([u.auth.id]);
    const done = await postJson('/auth/mfa/passkey', { mfa_token: mfaToken, credential: await u.auth.assert(o) }, { env: e });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(decodeJwt(done.body!.access_token as string).amr).toEqual(['pwd', 'hwk', 'mfa']);
    expect(await countRows('sessions', 'user_id = ?', u.user.user.id)).toBe(sessions + 1);

    // The pending state is spent: a second passkey answer starts nothing.
    const again = await postJson('/auth/mfa/passkey/options', { mfa_token: mfaToken }, { env: e });
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ error: 'invalid_token' });
  });

  it('another user’s passkey cannot complete the pending state (refused, no session)', async () => {
    const u = await passkeyUser();
    const other = await passkeyUser();
    const mfaToken = (await passwordStep(u.email)).body.mfa_token as string;
    const o = await mfaPasskeyOptions(mfaToken);
    const r = await postJson('/auth/mfa/passkey', { mfa_token: mfaToken, credential: await other.auth.assert(o) }, { env: e });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'invalid_credentials', reason: 'user_mismatch' });
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.user.user.id)).toBe(1);
  });

  it('the /auth/mfa page offers "Use your passkey" with its endpoints (form sign-in)', async () => {
    const u = await passkeyUser();
    const login = await call('/auth/login', { env: e, form: { email: u.email, password: GOOD_PASSWORD } });
    expect(login.status).toBe(303);
    const jar = updateJar({}, login);
    const page = await call('/auth/mfa', { env: e, cookies: jar, headers: NAV });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Use your passkey');
    expect(html).toContain('data-verify="/auth/mfa/passkey"');
    expect(html).toContain('data-options="/auth/mfa/passkey/options"');
  });

  it('MFA_REQUIRED_ROLES: a passkey counts as the enrolled factor (verify, not enrol)', async () => {
    const roles = mfaEnv({ MFA_REQUIRED_ROLES: 'admin' });
    const u = await passkeyUser(roles);
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', u.user.user.id).run();
    const step = await passwordStep(u.email, roles);
    expect(step.status).toBe(401);
    expect(step.body).toMatchObject({ error: 'mfa_required', enrolment_required: false });
  });

  it('step-up: a passkey steps up (amr gains hwk and mfa), so require = ["passkey"] / ["mfa"] are met', async () => {
    const u = await passkeyUser();
    const o = (await postJson('/auth/step-up/passkey/options', {}, { env: e, headers: bearer(u.user.access_token) })).body as unknown as AuthenticationOptions;
    const r = await postJson('/auth/step-up/passkey', { credential: await u.auth.assert(o) }, { env: e, headers: bearer(u.user.access_token) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const amr = decodeJwt(r.body!.access_token as string).amr as string[];
    expect(amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
  });

  it('the step-up page offers the passkey of a user who has one', async () => {
    const u = await passkeyUser();
    const login = await call('/auth/login', { env: e, form: { email: u.email, password: GOOD_PASSWORD } });
    const jar = updateJar({}, login);
    const o = (await postJson('/auth/mfa/passkey/options', {}, { env: e, cookies: jar })).body as unknown as AuthenticationOptions;
    const done = await call('/auth/mfa/passkey', { env: e, cookies: jar, json: { credential: await u.auth.assert(o) } });
    expect(done.status).toBe(303);
    updateJar(jar, done);
    const page = await call('/auth/step-up?return_to=%2F', { env: e, cookies: jar, headers: NAV });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-verify="/auth/step-up/passkey"');
  });
});

describe('a passkey sign-in goes through the same policy', () => {
  it('with user verification it is multi-factor by itself: tokens at once, amr has mfa', async () => {
    const u = await userWithTotp(e);
    const { auth } = await addPasskey(e, { jar: u.jar });
    const r = await postJson('/auth/passkeys/login', { credential: await auth.assert(await loginOptions()) }, { env: e });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(decodeJwt(r.body!.access_token as string).amr).toEqual(['hwk', 'user', 'mfa']);
  });

  it('without user verification it is one factor: a user with a TOTP gets the pending state, and finishes with a code (not the passkey again)', async () => {
    const u = await userWithTotp(e);
    const { auth } = await addPasskey(e, { jar: u.jar });
    const sessions = await countRows('sessions', 'user_id = ?', u.userId);
    const r = await postJson('/auth/passkeys/login', { credential: await auth.assert(await loginOptions(), { flags: UP_ONLY }) }, { env: e });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'mfa_required', mfa_token: expect.any(String) });
    expect(r.body).not.toHaveProperty('access_token');
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(sessions);
    const mfaToken = r.body!.mfa_token as string;
    // The same (or another) passkey is no second factor here.
    const passkeyAgain = await postJson('/auth/mfa/passkey/options', { mfa_token: mfaToken }, { env: e });
    expect(passkeyAgain.status).toBe(403);
    expect(passkeyAgain.body).toMatchObject({ error: 'forbidden' });
    const done = await call('/auth/mfa', { env: e, json: { mfa_token: mfaToken, code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(200);
    expect(decodeJwt(((await done.json()) as { access_token: string }).access_token).amr).toEqual(['hwk', 'user', 'otp', 'mfa']);
  });

  it('without user verification, a user with no other factor than passkeys... still owes one (a recovery code)', async () => {
    const u = await passkeyUser();
    const r = await postJson('/auth/passkeys/login', { credential: await u.auth.assert(await loginOptions(), { flags: UP_ONLY }) }, { env: e });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'mfa_required' });
    const done = await call('/auth/mfa', { env: e, json: { mfa_token: r.body!.mfa_token, code: u.codes[0] } });
    expect(done.status).toBe(200);
  });
});

describe('removing factors and recovery codes', () => {
  it('the first passkey gets ten recovery codes, shown once; a second passkey gets none', async () => {
    const u = await passkeyUser();
    expect(u.codes).toHaveLength(10);
    expect(await countRows('recovery_codes', 'user_id = ? AND used_at IS NULL', u.user.user.id)).toBe(10);
    const second = await addPasskey(e, { token: u.user.access_token });
    expect(second.body).not.toHaveProperty('recovery_codes');
  });

  it('removing the authenticator app keeps the recovery codes while a passkey remains; removing the last passkey removes them', async () => {
    const u = await userWithTotp(e);
    const { auth } = await addPasskey(e, { jar: u.jar });
    expect(await countRows('recovery_codes', 'user_id = ?', u.userId)).toBe(10);
    const removed = await call('/auth/account/totp/remove', { env: e, cookies: u.jar, form: {} });
    expect(removed.status).toBe(303);
    expect(await countRows('totp_factors', 'user_id = ?', u.userId)).toBe(0);
    expect(await countRows('recovery_codes', 'user_id = ?', u.userId)).toBe(10);
    const gone = await call(`/auth/passkeys/${auth.id}/remove`, { env: e, cookies: u.jar, form: {} });
    expect(gone.headers.get('location')).toBe('/auth/account?done=passkey_removed');
    expect(await countRows('recovery_codes', 'user_id = ?', u.userId)).toBe(0);
  });

  it('an admin reset removes the passkeys too (audited with the count); the user then signs in with the password alone', async () => {
    const admin = await registerUser(undefined, undefined, e);
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
    const u = await passkeyUser();
    const r = await call(`/auth/admin/users/${u.user.user.id}/second-factors`, { env: e, method: 'DELETE', headers: bearer(admin.access_token) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, removed: { totp: false, passkeys: 1, recovery_codes: 10 } });
    expect(await countRows('passkeys', 'user_id = ?', u.user.user.id)).toBe(0);
    const audit = await env.DB.prepare("SELECT detail FROM auth_events WHERE event = 'admin_second_factors_reset' AND user_id = ?").bind(u.user.user.id).first<string>('detail');
    expect(JSON.parse(audit!)).toMatchObject({ admin: admin.user.id, passkeys: 1, recovery_codes: 10 });
    expect((await passwordStep(u.email)).status).toBe(200);
  });
});

describe('notice mails', () => {
  // Verification off: these users register and sign in at once; the notices are the only mail.
  const m = mailEnv({ TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY, EMAIL_VERIFICATION: 'off' });
  const subjects = async (to: string) => (await mailFor(to)).map((x) => x.subject);

  it('passkey added and removed, TOTP added and removed, recovery codes regenerated: one notice each', async () => {
    const email = uniqueEmail('notice');
    const u = await userWithTotp(m, email);
    const { auth } = await addPasskey(m, { jar: u.jar });
    await call('/auth/account/recovery-codes', { env: m, cookies: u.jar, form: {} });
    await call(`/auth/passkeys/${auth.id}/remove`, { env: m, cookies: u.jar, form: {} });
    await call('/auth/account/totp/remove', { env: m, cookies: u.jar, form: {} });
    expect(await subjects(email)).toEqual(
      expect.arrayContaining([
        'Gatehouse: An authenticator app was added',
        'Gatehouse: A passkey was added',
        'Gatehouse: New recovery codes were made',
        'Gatehouse: A passkey was removed',
        'Gatehouse: Your authenticator app was removed',
      ]),
    );
  });

  it('an admin reset mails the user', async () => {
    const admin = await registerUser(undefined, undefined, m);
    await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind('["admin"]', admin.user.id).run();
    const email = uniqueEmail('reset');
    const u = await passkeyUser(m, email);
    await call(`/auth/admin/users/${u.user.user.id}/second-factors`, { env: m, method: 'DELETE', headers: bearer(admin.access_token) });
    expect(await subjects(email)).toContain('Gatehouse: Your second factors were reset');
  });

  it('a mail failure after the change neither undoes it nor fails the request', async () => {
    const email = uniqueEmail('mailfail');
    const user: TokenResponse = await registerUser(email, GOOD_PASSWORD, m);
    await failMailFor(email);
    try {
      const { auth } = await addPasskey(m, { token: user.access_token });
      expect(await countRows('passkeys', 'id = ?', auth.id)).toBe(1);
      expect(await mailFor(email)).toEqual([]);
    } finally {
      await recoverMail(email);
    }
  });

  it('no mail when mail is off', async () => {
    const email = uniqueEmail('nomail');
    await passkeyUser(e, email);
    expect(await mailFor(email)).toEqual([]);
  });
});

describe('housekeeping', () => {
  it('prunes expired mfa_pending, ended second_factor_failures and expired webauthn_challenges, keeping live ones', async () => {
    const u = await registerUser(undefined, undefined, e);
    const t = Math.floor(Date.now() / 1000);
    const db = env.DB;
    await db.batch([
      db.prepare(`INSERT INTO mfa_pending (id_hash, user_id, purpose, amr, provider, mode, return_to, created_at, expires_at) VALUES ('hk-old', ?, 'verify', '[]', NULL, 'token', '/', ?, ?)`).bind(u.user.id, t - 1000, t - 700),
      db.prepare(`INSERT INTO mfa_pending (id_hash, user_id, purpose, amr, provider, mode, return_to, created_at, expires_at) VALUES ('hk-live', ?, 'verify', '[]', NULL, 'token', '/', ?, ?)`).bind(u.user.id, t, t + 300),
      db.prepare(`INSERT INTO second_factor_failures (user_id, count, window_start) VALUES (?, 3, ?)`).bind(u.user.id, t - 2000),
      db.prepare(`INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, expires_at) VALUES ('hk-old', 'authenticate', NULL, ?)`).bind(t - 10),
      db.prepare(`INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, expires_at) VALUES ('hk-live', 'authenticate', NULL, ?)`).bind(t + 300),
    ]);
    const report = await runHousekeeping(db, { AUDIT_RETENTION_DAYS: 90 }, t);
    expect(report.mfaPending).toBeGreaterThanOrEqual(1);
    expect(report.secondFactorFailures).toBeGreaterThanOrEqual(1);
    expect(report.webauthnChallenges).toBeGreaterThanOrEqual(1);
    expect(await countRows('mfa_pending', "id_hash = 'hk-old'")).toBe(0);
    expect(await countRows('mfa_pending', "id_hash = 'hk-live'")).toBe(1);
    expect(await countRows('second_factor_failures', 'user_id = ?', u.user.id)).toBe(0);
    expect(await countRows('webauthn_challenges', "challenge_hash = 'hk-old'")).toBe(0);
    expect(await countRows('webauthn_challenges', "challenge_hash = 'hk-live'")).toBe(1);
  });
});
