/**
 * Users and linking: verified emails link, unverified ones never do; REGISTRATION=closed,
 * ALLOWED_EMAIL_DOMAINS and ADMIN_EMAILS apply to provider sign-ins too.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, countRows, makeEnv, registerUser, stateSnapshot, type TestEnv } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { sessionCookies, signIn, userByEmail } from '../support/oauth-helpers';

let idp: FakeOidcProvider;
const settings = () => ({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
let e: TestEnv;

beforeAll(async () => {
  installFakeNetwork();
  idp = await FakeOidcProvider.create();
  e = makeEnv(settings());
});

let n = 0;
const unique = (domain = 'example.com') => {
  n += 1;
  return { sub: `link-${n}-${Date.now()}`, email: `link-${n}-${Date.now()}@${domain}` };
};

async function me(response: Response, testEnv: TestEnv) {
  const r = await call('/auth/me', { env: testEnv, cookies: { '__Host-gatehouse': sessionCookies(response).access } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { user: { id: string; email: string; email_verified: boolean; roles: string[] } }).user;
}

describe('linking by verified email', () => {
  it('links a verified provider email to the existing password account, claims it, and ends the squatter sessions', async () => {
    const who = unique();
    const registered = await registerUser(who.email);
    idp.user = { ...who, email_verified: true };
    const r = await signIn('oidc', idp, e);
    expect(r.status).toBe(303);
    const user = await me(r, e);
    expect(user.id).toBe(registered.user.id);
    expect(user.email_verified).toBe(true);
    const row = await userByEmail(who.email);
    expect(row?.password_hash).toBeNull();
    expect(await countRows('identities', 'user_id = ? AND provider = ?', registered.user.id, 'oidc')).toBe(1);
    // Whoever registered the address without proving it is signed out everywhere.
    expect((await call('/auth/me', { env: e, headers: bearer(registered.access_token) })).status).toBe(401);
    expect((await call('/auth/refresh', { env: e, json: { refresh_token: registered.refresh_token } })).status).toBe(401);
    expect(await countRows('auth_events', "event = 'account_claimed' AND user_id = ?", registered.user.id)).toBe(1);
  });

  it('a verified sign-in claiming an account made with an unverified provider email unlinks that provider identity', async () => {
    const who = unique();
    const squatterSub = `${who.sub}-squatter`;
    idp.user = { sub: squatterSub, email: who.email, email_verified: false };
    const squatter = await signIn('oidc', idp, e);
    expect(squatter.status).toBe(303);
    const squatterAccess = sessionCookies(squatter).access;

    idp.user = { sub: who.sub, email: who.email, email_verified: true };
    const owner = await signIn('oidc', idp, e);
    expect(owner.status).toBe(303);
    const ownerUser = await me(owner, e);
    expect(ownerUser.email_verified).toBe(true);
    expect(await countRows('identities', 'user_id = ?', ownerUser.id)).toBe(1);
    expect(await countRows('identities', 'subject = ?', squatterSub)).toBe(0);
    expect((await call('/auth/me', { env: e, cookies: { '__Host-gatehouse': squatterAccess } })).status).toBe(401);

    // The squatter's provider identity no longer opens the account.
    idp.user = { sub: squatterSub, email: who.email, email_verified: false };
    const before = await stateSnapshot();
    expect((await signIn('oidc', idp, e)).status).toBe(409);
    expect(await stateSnapshot()).toEqual(before);
  });

  it('never links an unverified provider email to an existing account (409, nothing changes)', async () => {
    const who = unique();
    const registered = await registerUser(who.email);
    idp.user = { ...who, email_verified: false };
    const before = await stateSnapshot();
    const r = await signIn('oidc', idp, e);
    expect(r.status).toBe(409);
    expect(await r.text()).toContain('already exists');
    expect(await stateSnapshot()).toEqual(before);
    expect((await userByEmail(who.email))?.password_hash).not.toBeNull();
    expect((await call('/auth/me', { env: e, headers: bearer(registered.access_token) })).status).toBe(200);
  });

  it('treats a string "false" or a missing email_verified as unverified, and "true" as verified', async () => {
    const a = unique();
    await registerUser(a.email);
    idp.user = { ...a, email_verified: 'false' };
    expect((await signIn('oidc', idp, e)).status).toBe(409);
    const b = unique();
    await registerUser(b.email);
    idp.user = { sub: b.sub, email: b.email };
    expect((await signIn('oidc', idp, e)).status).toBe(409);
    const c = unique();
    idp.user = { ...c, email_verified: 'true' };
    const r = await signIn('oidc', idp, e);
    expect(r.status).toBe(303);
    expect((await me(r, e)).email_verified).toBe(true);
  });

  it('creates a new account with an unverified email as unverified (registration open, no domain rule)', async () => {
    const who = unique();
    idp.user = { ...who, email_verified: false };
    const r = await signIn('oidc', idp, e);
    expect(r.status).toBe(303);
    expect((await me(r, e)).email_verified).toBe(false);
  });

  it('refuses a provider that shares no email', async () => {
    idp.user = { sub: unique().sub };
    const before = await stateSnapshot();
    const r = await signIn('oidc', idp, e);
    expect(r.status).toBe(403);
    expect(await stateSnapshot()).toEqual(before);
  });

  it('refuses a disabled account', async () => {
    const who = unique();
    idp.user = { ...who, email_verified: true };
    expect((await signIn('oidc', idp, e)).status).toBe(303);
    await env.DB.prepare('UPDATE users SET disabled_at = 1 WHERE email = ?').bind(who.email).run();
    const before = await stateSnapshot();
    expect((await signIn('oidc', idp, e)).status).toBe(403);
    expect(await stateSnapshot()).toEqual(before);
  });
});

describe('REGISTRATION=closed', () => {
  it('refuses new accounts but lets existing ones link and sign in', async () => {
    const closed = makeEnv({ ...settings(), REGISTRATION: 'closed' });
    idp.user = { ...unique(), email_verified: true };
    const before = await stateSnapshot();
    const r = await signIn('oidc', idp, closed);
    expect(r.status).toBe(403);
    expect(await r.text()).toContain('Registration is closed');
    expect(await stateSnapshot()).toEqual(before);

    const existing = unique();
    await registerUser(existing.email);
    idp.user = { ...existing, email_verified: true };
    expect((await signIn('oidc', idp, closed)).status).toBe(303);
  });
});

describe('ALLOWED_EMAIL_DOMAINS', () => {
  let corp: TestEnv;
  beforeAll(() => {
    corp = makeEnv({ ...settings(), ALLOWED_EMAIL_DOMAINS: 'corp.example' });
  });

  it('admits a verified address at an allowed domain', async () => {
    idp.user = { ...unique('corp.example'), email_verified: true };
    expect((await signIn('oidc', idp, corp)).status).toBe(303);
  });

  it('compares the parsed domain exactly: other domains, look-alikes and a@evil@corp are refused', async () => {
    for (const email of ['x@evil.example', 'x@corp.example.evil.example', 'x@evilcorp.example', 'a@evil.example@corp.example', 'x@sub.corp.example']) {
      idp.user = { sub: unique().sub, email, email_verified: true };
      const before = await stateSnapshot();
      const r = await signIn('oidc', idp, corp);
      expect(r.status, email).toBe(403);
      expect(await stateSnapshot()).toEqual(before);
    }
  });

  it('refuses an unverified address even at the allowed domain', async () => {
    idp.user = { ...unique('corp.example'), email_verified: false };
    const before = await stateSnapshot();
    expect((await signIn('oidc', idp, corp)).status).toBe(403);
    expect(await stateSnapshot()).toEqual(before);
  });
});

describe('ADMIN_EMAILS', () => {
  it('grants admin to a verified address only', async () => {
    const verified = unique();
    const unverified = unique();
    const admins = makeEnv({ ...settings(), ADMIN_EMAILS: `${verified.email},${unverified.email}` });
    idp.user = { ...verified, email_verified: true };
    const a = await signIn('oidc', idp, admins);
    expect((await me(a, admins)).roles).toEqual(['admin']);
    idp.user = { ...unverified, email_verified: false };
    const b = await signIn('oidc', idp, admins);
    expect((await me(b, admins)).roles).toEqual([]);
  });
});
