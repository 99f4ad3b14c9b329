/**
 * Ownership of an address: when the mailbox owner proves an unverified address (a verified
 * provider sign-in, a reset link, a sign-in code, a registration link), everything whoever held
 * the account before could have added is gone in the same step: passkeys, the authenticator,
 * recovery codes, pending second-factor states, linked identities, mailed links and sessions
 * (and the password, unless the proof came with it). The owner then signs in without being
 * asked for a factor they never added; the squatter's factors open nothing.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMailboxProof } from '../../../src/storage/mailbox-proof';
import { nowSeconds } from '../../../src/util/time';
import { bearer, call, countRows, GOOD_PASSWORD, makeEnv, setCookies, type TestEnv, type TokenResponse } from '../support/helpers';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';
import { FakeOidcProvider, fakeHost, installFakeNetwork } from '../support/oauth-fakes';
import { FLOW_COOKIE, sessionCookies, signIn } from '../support/oauth-helpers';
import { postJson, SoftAuthenticator, type AuthenticationOptions, type RegistrationOptions } from '../support/passkeys-helpers';
import { ENCRYPTION_KEY, userWithTotp, type Jar } from '../support/second-factor-helpers';

let idp: FakeOidcProvider;
const oidc = () => ({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });

beforeAll(async () => {
  const realFetch = globalThis.fetch;
  installFakeNetwork();
  // The test mail server's inbox stays reachable behind the fake network.
  fakeHost(new URL(inject('mail').inboxUrl).origin, (request) => realFetch(request));
  idp = await FakeOidcProvider.create();
});

let n = 0;
const subject = (label: string) => `${label}-${++n}-${Date.now()}`;
const ACCESS = '__Host-gatehouse';
const REFRESH = '__Secure-gatehouse-refresh';

/** Registers a passkey for the signed-in user behind `access`. */
async function addPasskey(e: TestEnv, access: string): Promise<SoftAuthenticator> {
  const authenticator = await SoftAuthenticator.create();
  const options = (await postJson('/auth/passkeys/register/options', {}, { env: e, headers: bearer(access) })).body as unknown as RegistrationOptions;
  const r = await postJson('/auth/passkeys/register', { credential: await authenticator.register(options) }, { env: e, headers: bearer(access) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return authenticator;
}

/** Signs in with a passkey alone; the status of the answer. */
async function passkeySignIn(e: TestEnv, authenticator: SoftAuthenticator): Promise<number> {
  const options = (await postJson('/auth/passkeys/login/options', {}, { env: e })).body as unknown as AuthenticationOptions;
  return (await postJson('/auth/passkeys/login', { credential: await authenticator.assert(options) }, { env: e })).status;
}

/** Links the provider identity `sub` to the signed-in account behind `access`, from the account page. */
async function linkIdentity(e: TestEnv, access: string, sub: string): Promise<void> {
  const start = await call('/auth/account/identities/link/oidc', { form: {}, cookies: { [ACCESS]: access }, env: e });
  expect(start.status, await start.clone().text()).toBe(200);
  const flow = setCookies(start).get(FLOW_COOKIE)!.value;
  const href = /<a [^>]*href="([^"]+)"[^>]*data-provider="oidc"/.exec(await start.text())![1]!.replaceAll('&amp;', '&');
  idp.user = { sub, email: `${sub}@elsewhere.example`, email_verified: true };
  const consent = await idp.authorize(href, idp.authorizeUrl);
  const r = await call(consent.callback, { env: e, cookies: { [FLOW_COOKIE]: flow, [ACCESS]: access }, headers: { accept: 'text/html' } });
  expect(r.status, await r.clone().text()).toBe(303);
}

/** What the account holds that could open it, besides the password. */
async function waysIn(userId: string) {
  return {
    passkeys: await countRows('passkeys', 'user_id = ?', userId),
    authenticator: await countRows('totp_factors', 'user_id = ?', userId),
    recoveryCodes: await countRows('recovery_codes', 'user_id = ?', userId),
    pending: await countRows('mfa_pending', 'user_id = ?', userId),
    identities: await countRows('identities', 'user_id = ?', userId),
    links: await countRows('account_tokens', 'user_id = ?', userId),
    liveSessions: await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', userId),
  };
}

const userRow = (email: string) =>
  env.DB.prepare('SELECT id, email_verified, password_hash FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number; password_hash: string | null }>();

/**
 * A squatter registers `email` with a password (never proving the address), signs in, adds a
 * passkey, an authenticator app (with recovery codes), links their own provider identity and
 * leaves a pending second-factor sign-in behind.
 */
async function squat(e: TestEnv, email: string) {
  const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
  expect(r.status, await r.clone().text()).toBe(201);
  const jar: Jar = { [ACCESS]: setCookies(r).get(ACCESS)!.value, [REFRESH]: setCookies(r).get(REFRESH)!.value };
  const totp = await userWithTotp(e, email, jar);
  const passkey = await addPasskey(e, totp.jar[ACCESS]!);
  const identity = subject('squatter');
  await linkIdentity(e, totp.jar[ACCESS]!, identity);
  // A password sign-in now stops at the second factor: a pending state the squatter holds.
  const pending = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } });
  expect(await pending.json()).toMatchObject({ error: 'mfa_required', mfa_token: expect.any(String) });
  const user = (await userRow(email))!;
  expect(user.email_verified).toBe(0);
  expect(await waysIn(user.id)).toMatchObject({ passkeys: 1, authenticator: 1, recoveryCodes: 10, pending: 1, identities: 1 });
  return { userId: user.id, passkey, jar: totp.jar, identity };
}

const nothingLeft = { passkeys: 0, authenticator: 0, recoveryCodes: 0, pending: 0, links: 0 };

describe('a verified provider sign-in claims an unverified account', () => {
  it('removes the squatter\'s passkey, authenticator, recovery codes, pending state, identity and sessions; the owner reaches the app as admin, the squatter gets nothing', async () => {
    const email = uniqueEmail('claimed');
    const e = makeEnv({ ...oidc(), ADMIN_EMAILS: email });
    const squatter = await squat(e, email);

    const owner = subject('owner');
    idp.user = { sub: owner, email, email_verified: true };
    const r = await signIn('oidc', idp, e);
    expect(r.status, await r.clone().text()).toBe(303);
    expect(r.headers.get('location')).not.toContain('/mfa');
    const me = await call('/auth/me', { env: e, cookies: { [ACCESS]: sessionCookies(r).access } });
    expect(me.status).toBe(200);
    const { user } = await me.json<{ user: { id: string; email_verified: boolean; roles: string[] } }>();
    expect(user).toMatchObject({ id: squatter.userId, email_verified: true });
    expect(user.roles).toContain('admin');

    expect(await waysIn(squatter.userId)).toMatchObject({ ...nothingLeft, identities: 1, liveSessions: 1 });
    expect(await countRows('identities', 'user_id = ? AND subject = ?', squatter.userId, owner)).toBe(1);
    expect((await userRow(email))!.password_hash).toBeNull();
    expect(await countRows('auth_events', "event = 'account_claimed' AND user_id = ?", squatter.userId)).toBe(1);

    // The squatter: the passkey opens nothing, the old session is over, the password is gone.
    expect(await passkeySignIn(e, squatter.passkey)).not.toBe(200);
    expect((await call('/auth/me', { env: e, cookies: { [ACCESS]: squatter.jar[ACCESS]! } })).status).toBe(401);
    expect((await call('/auth/refresh', { env: e, method: 'POST', cookies: squatter.jar })).status).toBe(401);
    expect((await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } })).status).toBe(401);
    // Their provider identity now leads to an account of its own address, not to this one.
    idp.user = { sub: squatter.identity, email: `${squatter.identity}@elsewhere.example`, email_verified: true };
    const theirs = await signIn('oidc', idp, e);
    expect(theirs.status).toBe(303);
    const them = await (await call('/auth/me', { env: e, cookies: { [ACCESS]: sessionCookies(theirs).access } })).json<{ user: { id: string; roles: string[] } }>();
    expect(them.user.id).not.toBe(squatter.userId);
    expect(them.user.roles).not.toContain('admin');
  });

  it('a returning identity whose provider now vouches for the address verifies it and removes the rest (the identity stays)', async () => {
    const e = makeEnv(oidc());
    const email = uniqueEmail('returning');
    const sub = subject('returning');
    idp.user = { sub, email, email_verified: false };
    const first = await signIn('oidc', idp, e);
    expect(first.status).toBe(303);
    const userId = (await userRow(email))!.id;
    const passkey = await addPasskey(e, sessionCookies(first).access);

    idp.user = { sub, email, email_verified: true };
    const again = await signIn('oidc', idp, e);
    expect(again.status, await again.clone().text()).toBe(303);
    expect(again.headers.get('location')).not.toContain('/mfa');
    expect((await userRow(email))!.email_verified).toBe(1);
    expect(await waysIn(userId)).toMatchObject({ ...nothingLeft, identities: 1, liveSessions: 1 });
    expect((await call('/auth/me', { env: e, cookies: { [ACCESS]: sessionCookies(first).access } })).status).toBe(401);
    expect(await passkeySignIn(e, passkey)).not.toBe(200);
    expect(await countRows('auth_events', "event = 'account_claimed' AND user_id = ?", userId)).toBe(1);
  });

  it('an address already verified loses nothing: the proof only verifies, it never wipes a verified account', async () => {
    const e = makeEnv(oidc());
    const email = uniqueEmail('verified');
    const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
    const t = await r.json<TokenResponse>();
    await addPasskey(e, t.access_token);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE email = ?').bind(email).run();
    idp.user = { sub: subject('verified'), email, email_verified: true };
    const linked = await signIn('oidc', idp, e);
    expect(linked.status).toBe(303);
    expect(await waysIn(t.user.id)).toMatchObject({ passkeys: 1, identities: 1 });
    expect((await userRow(email))!.password_hash).not.toBeNull();
    expect((await call('/auth/me', { env: e, headers: bearer(t.access_token) })).status).toBe(200);
    expect(await countRows('auth_events', "event = 'account_claimed' AND user_id = ?", t.user.id)).toBe(0);
    // The batch itself is a no-op on a verified account: a proof that lost a race to another removes nothing.
    const late = await applyMailboxProof(env.DB, { userId: t.user.id, email, password: { kind: 'remove' }, now: nowSeconds() });
    expect(late).toMatchObject({ claimed: false, removed: { passkeys: 0, authenticator: 0, recoveryCodes: 0, identities: 0, links: 0 } });
    expect(await waysIn(t.user.id)).toMatchObject({ passkeys: 1, identities: 1 });
    expect((await userRow(email))!.password_hash).not.toBeNull();
  });
});

describe('a mailed proof claims an unverified account', () => {
  it('password reset (EMAIL_VERIFICATION=optional): the reset verifies the address and removes the squatter\'s passkey, authenticator and identities; the new password signs in without a second factor', async () => {
    const e = mailEnv({ EMAIL_VERIFICATION: 'optional', ...oidc() });
    const email = uniqueEmail('reset-claim');
    const squatter = await squat(e, email);
    expect((await call('/auth/password/forgot', { env: e, json: { email } })).status).toBe(202);
    const mail = (await mailFor(email)).filter((m) => m.subject.startsWith('Reset your')).at(-1)!;
    const token = new URL(mail.links.find((l) => l.includes('/password/reset'))!).searchParams.get('token')!;
    const newPassword = 'the owner sets a brand new passphrase';
    const reset = await call('/auth/password/reset', { env: e, json: { token, password: newPassword } });
    expect(reset.status, await reset.clone().text()).toBe(200);

    const user = (await userRow(email))!;
    expect(user.email_verified).toBe(1);
    expect(await waysIn(squatter.userId)).toMatchObject({ ...nothingLeft, identities: 0, liveSessions: 0 });
    expect(await passkeySignIn(e, squatter.passkey)).not.toBe(200);
    expect((await call('/auth/me', { env: e, cookies: { [ACCESS]: squatter.jar[ACCESS]! } })).status).toBe(401);
    const signedIn = await call('/auth/login', { env: e, json: { email, password: newPassword } });
    expect(signedIn.status).toBe(200);
    expect(await signedIn.json()).toMatchObject({ access_token: expect.any(String), user: { email_verified: true } });
  });

  it('sign-in code: the code verifies the address and removes the squatter\'s passkey, authenticator, identities and password', async () => {
    const e = mailEnv({ EMAIL_VERIFICATION: 'off', EMAIL_LOGIN: 'enabled', ...oidc() });
    const email = uniqueEmail('code-claim');
    const squatter = await squat(e, email);
    expect((await call('/auth/login/email-code', { env: e, json: { email } })).status).toBe(202);
    const mail = (await mailFor(email)).find((m) => m.subject.includes('sign-in code'))!;
    const code = /\b(\d{8})\b/.exec(mail.subject)![1]!;
    const r = await call('/auth/login/email-code/verify', { env: e, json: { email, code } });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toMatchObject({ access_token: expect.any(String), user: { email_verified: true } });
    expect(await waysIn(squatter.userId)).toMatchObject({ ...nothingLeft, identities: 0, liveSessions: 1 });
    expect((await userRow(email))!.password_hash).toBeNull();
    expect(await passkeySignIn(e, squatter.passkey)).not.toBe(200);
  });

  it('registration link (EMAIL_VERIFICATION=optional): confirming with the password verifies the address, keeps that password and removes what was added before', async () => {
    const e = mailEnv({ EMAIL_VERIFICATION: 'optional', ...oidc() });
    const email = uniqueEmail('link-claim');
    const squatter = await squat(e, email);
    const mail = (await mailFor(email)).find((m) => m.links.some((l) => l.includes('/email/verify')))!;
    const token = new URL(mail.links.find((l) => l.includes('/email/verify'))!).searchParams.get('token')!;
    const hashBefore = (await userRow(email))!.password_hash;
    const r = await call('/auth/email/verify', { env: e, json: { token, password: GOOD_PASSWORD } });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await r.json()).toMatchObject({ access_token: expect.any(String), user: { email_verified: true } });
    expect(await waysIn(squatter.userId)).toMatchObject({ ...nothingLeft, identities: 0, liveSessions: 1 });
    expect((await userRow(email))!.password_hash).toBe(hashBefore);
    expect(await passkeySignIn(e, squatter.passkey)).not.toBe(200);
    expect((await call('/auth/me', { env: e, cookies: { [ACCESS]: squatter.jar[ACCESS]! } })).status).toBe(401);
  });
});
