/**
 * Ownership of an address against a squatter whose session the claim has ended, but whose
 * access token a location of the gateway still accepts: another isolate's "not revoked" answer
 * is kept `REVOCATION_CACHE_SECONDS`, and KV takes up to about a minute to reach every location
 * (docs/design.md, "Revocation"). Within that window the token may still read, but it must not
 * add a way into the account the owner has just taken over: a linked identity, an authenticator
 * app, a new address, or an administrator's call (the claim may make the account an
 * administrator through ADMIN_EMAILS), nor take what the owner's proof brought in (the owner's
 * provider token). Every such change checks that the caller's session is live in its user's
 * object, where the claim ends every session before its D1 batch, and again after it.
 */
import { env } from 'cloudflare:test';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMailboxProof } from '../../../src/storage/mailbox-proof';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { nowSeconds } from '../../../src/util/time';
import { claimBefore } from '../support/claim-between';
import { call, countRows, GOOD_PASSWORD, revokedKeys, setCookies, type TestEnv } from '../support/helpers';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';
import { fakeHost, FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { FLOW_COOKIE, signIn } from '../support/oauth-helpers';
import { postJson, type RegistrationOptions, SoftAuthenticator } from '../support/passkeys-helpers';
import { ENCRYPTION_KEY, NAV, secretFromPage, totpCode } from '../support/second-factor-helpers';
import { sessionRows, sessionsObject } from '../support/user-sessions-store';

let idp: FakeOidcProvider;
const oidcSettings = () => ({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY, EMAIL_VERIFICATION: 'optional' });
const oidcEnv = () => mailEnv(oidcSettings());

beforeAll(async () => {
  const realFetch = globalThis.fetch;
  installFakeNetwork();
  fakeHost(new URL(inject('mail').inboxUrl).origin, (request) => realFetch(request));
  idp = await FakeOidcProvider.create();
});
afterEach(() => clearRevocationCache());

let n = 0;
const subject = (label: string) => `${label}-${++n}-${Date.now()}`;
const ACCESS = '__Host-gatehouse';

/** A squatter registers `email` (never proving it) and holds a fresh browser session. */
async function squat(e: TestEnv, email: string): Promise<{ userId: string; access: string }> {
  const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
  expect(r.status, await r.clone().text()).toBe(201);
  const user = await env.DB.prepare('SELECT id, email_verified FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number }>();
  expect(user!.email_verified).toBe(0);
  return { userId: user!.id, access: setCookies(r).get(ACCESS)!.value };
}

/** The mailbox owner signs in with a provider that vouches for `email`: the account is claimed. */
async function claim(e: TestEnv, email: string, userId: string): Promise<void> {
  idp.user = { sub: subject('owner'), email, email_verified: true };
  const r = await signIn('oidc', idp, e);
  expect(r.status, await r.clone().text()).toBe(303);
  expect(await countRows('auth_events', "event = 'account_claimed' AND user_id = ?", userId)).toBe(1);
}

/**
 * This request now runs where the revocation has not arrived: a fresh isolate (no cached
 * answer) whose KV location still reads the `sid:` keys as missing. D1 says the sessions ended.
 */
async function revocationNotYetHere(userId: string): Promise<void> {
  clearRevocationCache();
  const results = await sessionRows<{ id: string; revoked_at: number | null }>('SELECT id, revoked_at FROM sessions WHERE user_id = ?', [userId]);
  for (const s of results) await env.REVOKED.delete(`sid:${s.id}`);
}

describe('a squatter\'s session ended by a claim adds no way in where its revocation has not arrived', () => {
  it('a link flow started before the claim and finished after it links nothing', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('link-race');
    const squatter = await squat(e, email);
    const start = await call('/auth/account/identities/link/oidc', { form: {}, cookies: { [ACCESS]: squatter.access }, env: e });
    expect(start.status, await start.clone().text()).toBe(200);
    const flow = setCookies(start).get(FLOW_COOKIE)!.value;
    const href = /<a [^>]*href="([^"]+)"[^>]*data-provider="oidc"/.exec(await start.text())![1]!.replaceAll('&amp;', '&');
    const theirs = subject('squatter');
    idp.user = { sub: theirs, email: `${theirs}@elsewhere.example`, email_verified: true };
    const consent = await idp.authorize(href, idp.authorizeUrl);

    await claim(e, email, squatter.userId);
    await revocationNotYetHere(squatter.userId);

    const r = await call(consent.callback, { env: e, cookies: { [FLOW_COOKIE]: flow, [ACCESS]: squatter.access }, headers: { accept: 'text/html' } });
    expect(r.status).toBe(403);
    expect(await countRows('identities', 'provider = ? AND subject = ?', 'oidc', theirs)).toBe(0);
  });

  it('an authenticator app set up after the claim is refused: no key is stored, none can be confirmed', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('totp-race');
    const squatter = await squat(e, email);
    await claim(e, email, squatter.userId);
    await revocationNotYetHere(squatter.userId);

    const page = await call('/auth/account/totp', { env: e, cookies: { [ACCESS]: squatter.access }, headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await countRows('totp_factors', 'user_id = ?', squatter.userId)).toBe(0);
    const confirm = await call('/auth/account/totp/confirm', { env: e, form: { code: '123456' }, cookies: { [ACCESS]: squatter.access } });
    expect(confirm.status).toBe(401);
    expect(await countRows('totp_factors', 'user_id = ?', squatter.userId)).toBe(0);
  });

  it('an email change asked for after the claim is refused: no link is mailed, the account keeps its address', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('email-race');
    const squatter = await squat(e, email);
    await claim(e, email, squatter.userId);
    await revocationNotYetHere(squatter.userId);

    const elsewhere = uniqueEmail('squatter-new');
    const r = await call('/auth/account/email', { env: e, json: { new_email: elsewhere }, cookies: { [ACCESS]: squatter.access } });
    expect(r.status).toBe(401);
    expect(await countRows('account_tokens', "user_id = ? AND purpose = 'change_email'", squatter.userId)).toBe(0);
    expect(await mailFor(elsewhere)).toHaveLength(0);
  });

  it('an email-change link the squatter holds is not confirmed by the squatter\'s ended session', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('confirm-race');
    const squatter = await squat(e, email);
    await claim(e, email, squatter.userId);
    // A change_email link issued after the wipe (a request that passed its checks just before the
    // claim and wrote just after it), and the squatter's session, still accepted here.
    const token = await issueChangeEmailLink(squatter.userId, uniqueEmail('squatter-new'));
    await revocationNotYetHere(squatter.userId);

    const r = await call('/auth/account/email/confirm', { env: e, json: { token }, cookies: { [ACCESS]: squatter.access } });
    expect(r.status).toBe(403);
    const row = await env.DB.prepare('SELECT email FROM users WHERE id = ?').bind(squatter.userId).first<{ email: string }>();
    expect(row!.email).toBe(email);
  });

  it('an address in ADMIN_EMAILS: the claim makes the account an administrator, and the squatter\'s ended session gets no admin call', async () => {
    const email = uniqueEmail('admin-race');
    const e = mailEnv({ ...oidcSettings(), ADMIN_EMAILS: email });
    const squatter = await squat(e, email);
    // Unverified, the address in ADMIN_EMAILS grants nothing.
    expect((await call('/auth/admin/users', { env: e, cookies: { [ACCESS]: squatter.access } })).status).toBe(403);
    await claim(e, email, squatter.userId);
    await revocationNotYetHere(squatter.userId);

    const other = await squat(e, uniqueEmail('squatter-other'));
    expect((await call('/auth/admin/users', { env: e, cookies: { [ACCESS]: squatter.access } })).status).toBe(401);
    const grant = await call(`/auth/admin/users/${other.userId}/roles/admin`, { env: e, method: 'PUT', cookies: { [ACCESS]: squatter.access } });
    expect(grant.status).toBe(401);
    const roles = await env.DB.prepare('SELECT roles FROM users WHERE id = ?').bind(other.userId).first<{ roles: string }>();
    expect(JSON.parse(roles!.roles)).not.toContain('admin');
  });

  it('STORE_PROVIDER_TOKENS: the owner\'s provider token, stored by the claim, is not handed to the squatter\'s ended session', async () => {
    const email = uniqueEmail('tokens-race');
    const e = mailEnv({ ...oidcSettings(), STORE_PROVIDER_TOKENS: 'true' });
    const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(201);
    const { access_token: squatterToken } = await r.json<{ access_token: string }>();
    const userId = (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!.id;
    await claim(e, email, userId);
    expect(await countRows('identities', 'user_id = ? AND tokens_encrypted IS NOT NULL', userId)).toBe(1);
    await revocationNotYetHere(userId);

    const tokens = await call('/auth/provider-tokens/oidc', { env: e, headers: { authorization: `Bearer ${squatterToken}` } });
    expect(tokens.status).toBe(401);
    expect(await tokens.text()).not.toContain('access_token":"');
  });
});

describe('a way in whose checks passed before a claim is not stored after it', () => {
  it('a passkey registration: the claim lands between its checks and its insert, and no passkey is stored', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('passkey-insert-race');
    const squatter = await squat(e, email);
    const authenticator = await SoftAuthenticator.create();
    const headers = { authorization: `Bearer ${squatter.access}` };
    const options = (await postJson('/auth/passkeys/register/options', {}, { env: e, headers })).body as unknown as RegistrationOptions;
    const racing = { ...e, DB: claimBefore(env.DB, 'INSERT INTO passkeys', mailboxProof(squatter.userId, email)) };
    const r = await postJson('/auth/passkeys/register', { credential: await authenticator.register(options) }, { env: racing, headers });
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(await countRows('passkeys', 'user_id = ?', squatter.userId)).toBe(0);
  });

  it('a link flow\'s callback: the claim lands between its session check and its insert, and no identity is linked', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('link-insert-race');
    const squatter = await squat(e, email);
    const start = await call('/auth/account/identities/link/oidc', { form: {}, cookies: { [ACCESS]: squatter.access }, env: e });
    const flow = setCookies(start).get(FLOW_COOKIE)!.value;
    const href = /<a [^>]*href="([^"]+)"[^>]*data-provider="oidc"/.exec(await start.text())![1]!.replaceAll('&amp;', '&');
    const theirs = subject('squatter');
    idp.user = { sub: theirs, email: `${theirs}@elsewhere.example`, email_verified: true };
    const consent = await idp.authorize(href, idp.authorizeUrl);

    const racing = { ...e, DB: claimBefore(env.DB, 'INSERT INTO identities', mailboxProof(squatter.userId, email)) };
    const r = await call(consent.callback, { env: racing, cookies: { [FLOW_COOKIE]: flow, [ACCESS]: squatter.access }, headers: { accept: 'text/html' } });
    expect(r.status).toBe(403);
    expect(await countRows('identities', 'provider = ? AND subject = ?', 'oidc', theirs)).toBe(0);
  });

  it('an authenticator app confirmed just before the claim: the recovery codes made just after it are not stored', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('codes-race');
    const squatter = await squat(e, email);
    const jar = { [ACCESS]: squatter.access };
    const page = await call('/auth/account/totp', { env: e, cookies: jar, headers: NAV });
    expect(page.status).toBe(200);
    const code = totpCode(secretFromPage(await page.text()));

    const racing = { ...e, DB: claimBefore(env.DB, 'INSERT INTO recovery_codes', mailboxProof(squatter.userId, email)) };
    const r = await call('/auth/account/totp/confirm', { env: racing, cookies: jar, headers: NAV, form: { code } });
    expect(r.status).not.toBe(200);
    expect(recoveryCodesIn(await r.text())).toHaveLength(0);
    expect(await countRows('recovery_codes', 'user_id = ?', squatter.userId)).toBe(0);
    expect(await countRows('totp_factors', 'user_id = ?', squatter.userId)).toBe(0);
  });
});

/** The D1 side of the owner's claim (a verified provider sign-in, a sign-in code). */
const mailboxProof = (userId: string, email: string) => () => applyMailboxProof(env.DB, { userId, email, password: { kind: 'remove' }, now: nowSeconds() });

/** Issues a change-email link for `userId` to `to`, as the request would have. */
async function issueChangeEmailLink(userId: string, to: string): Promise<string> {
  const { issueAccountToken } = await import('../../../src/storage/account-tokens');
  const { nowSeconds } = await import('../../../src/util/time');
  return issueAccountToken(env.DB, { userId, purpose: 'change_email', email: to, ttlSeconds: 1800, now: nowSeconds() });
}

/** Recovery codes shown on a page (none when it shows none). */
const recoveryCodesIn = (html: string) => html.match(/\b[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}\b/g) ?? [];

describe('a session stored while a claim runs is ended by it', () => {
  it('a sign-in that stores its session between the claim\'s first ending of sessions and its D1 batch: the claim ends it after the batch', async () => {
    const e = oidcEnv();
    const email = uniqueEmail('between');
    const { userId } = await squat(e, email);
    // The squatter's sign-in read the account before the claim and stores its session just
    // before the claim's batch (after the claim's first pass over the sessions).
    const t = nowSeconds();
    const sid = `ses_between${++n}`;
    const storeSquatterSession = () =>
      sessionsObject(userId).create(userId, {
        id: sid, user_id: userId, refresh_hash: `hash-${sid}`, family: 'f', created_at: t, expires_at: t + 3600, last_used_at: t,
        revoked_at: null, user_agent: null, ip: null, provider: 'password', amr: '["pwd"]', auth_time: t,
      });
    await claim({ ...e, DB: claimBefore(env.DB, 'DELETE FROM passkeys', storeSquatterSession) }, email, userId);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NULL', sid)).toBe(0);
    expect(await countRows('sessions', 'id = ?', sid)).toBe(1);
    expect(await revokedKeys()).toContain(`sid:${sid}`);
  });
});
