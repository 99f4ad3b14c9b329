/**
 * Linked sign-in methods on the account page: link another provider through the OAuth flow (for
 * the signed-in user only; an identity of another account is refused), unlink while another way
 * to sign in remains.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { bearer, call, countRows, GOOD_PASSWORD, makeEnv, setCookies, uniqueEmail, type TestEnv } from '../support/helpers';
import { lastMailFor, mailEnv, mailFor } from '../support/mail';
import { fakeHost, FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { FLOW_COOKIE, sessionCookies, signIn } from '../support/oauth-helpers';
import { ageSignIn } from '../support/second-factor-helpers';

let idp: FakeOidcProvider;
let e: TestEnv;
/** The same gateway with mail on, for the notices. */
let mailed: TestEnv;

beforeAll(async () => {
  const realFetch = fetch;
  installFakeNetwork();
  // The test mail server's inbox is read over the real network.
  fakeHost(new URL(inject('mail').inboxUrl).origin, (request) => realFetch(request));
  idp = await FakeOidcProvider.create();
  const oidc = { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret };
  e = makeEnv(oidc);
  mailed = mailEnv({ ...oidc, EMAIL_VERIFICATION: 'off' });
});

let n = 0;
const subject = () => `links-${++n}-${Date.now()}`;

async function register(testEnv = e) {
  const email = uniqueEmail('links');
  const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD }, env: testEnv });
  expect(r.status).toBe(201);
  const body = (await r.json()) as { access_token: string; refresh_token: string; user: { id: string } };
  return { email, token: body.access_token, refresh: body.refresh_token, id: body.user.id };
}

/** An access token of the user's session whose sign-in was an hour ago (as a stolen, refreshed token would be). */
async function hourOldToken(user: { token: string; refresh: string }, testEnv = e): Promise<string> {
  await ageSignIn(decodeJwt(user.token).sid as string, 3600);
  const r = await call('/auth/refresh', { json: { refresh_token: user.refresh }, env: testEnv });
  expect(r.status, await r.clone().text()).toBe(200);
  const token = ((await r.json()) as { access_token: string }).access_token;
  expect(Math.floor(Date.now() / 1000) - (decodeJwt(token).auth_time as number)).toBeGreaterThanOrEqual(3600);
  return token;
}

/** Starts a link from the account page and lets the fake provider consent as `sub`; returns the callback's answer. */
async function link(accessToken: string, sub: string, opts: { callbackAccess?: string | null; env?: TestEnv } = {}) {
  const e = opts.env ?? defaultLinkEnv();
  const start = await call('/auth/account/identities/link/oidc', { form: {}, cookies: { '__Host-gatehouse': accessToken }, env: e });
  expect(start.status, await start.clone().text()).toBe(200);
  const flow = setCookies(start).get(FLOW_COOKIE)!.value;
  const href = /<a [^>]*href="([^"]+)"[^>]*data-provider="oidc"/.exec(await start.text())![1]!.replaceAll('&amp;', '&');
  idp.user = { sub, email: `${sub}@elsewhere.example`, email_verified: true };
  const consent = await idp.authorize(href, idp.authorizeUrl);
  const cookies: Record<string, string> = { [FLOW_COOKIE]: flow };
  const access = opts.callbackAccess === undefined ? accessToken : opts.callbackAccess;
  if (access) cookies['__Host-gatehouse'] = access;
  return call(consent.callback, { env: e, cookies, headers: { accept: 'text/html' } });
}

const defaultLinkEnv = () => e;

const identityOwner = async (sub: string) =>
  (await env.DB.prepare("SELECT user_id FROM identities WHERE provider = 'oidc' AND subject = ?").bind(sub).first<{ user_id: string }>())?.user_id ?? null;

describe('link another provider', () => {
  it('links the provider identity to the signed-in account without starting a session or matching emails', async () => {
    const user = await register();
    const sub = subject();
    const sessionsBefore = await countRows('sessions', 'user_id = ?', user.id);
    const r = await link(user.token, sub);
    expect(r.status, await r.clone().text()).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/account?done=identity_linked');
    expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
    expect(await identityOwner(sub)).toBe(user.id);
    expect(await countRows('sessions', 'user_id = ?', user.id)).toBe(sessionsBefore);
    expect(await countRows('users', 'email = ?', `${sub}@elsewhere.example`)).toBe(0);
    const page = await call('/auth/account?done=identity_linked', { cookies: { '__Host-gatehouse': user.token }, headers: { accept: 'text/html' }, env: e });
    const html = await page.text();
    expect(html).toContain('The sign-in method has been linked.');
    expect(html).toContain('Unlink OpenID Connect');
  });

  it('refuses an identity already linked to another account (409 page), leaving it where it was', async () => {
    const owner = await register();
    const other = await register();
    const sub = subject();
    expect((await link(owner.token, sub)).status).toBe(303);
    const r = await link(other.token, sub);
    expect(r.status).toBe(409);
    expect(await r.text()).toContain('already linked to another account');
    expect(await identityOwner(sub)).toBe(owner.id);
    expect(await countRows('identities', 'user_id = ?', other.id)).toBe(0);
  });

  it('links nothing when the browser is no longer signed in as the user who started it (403 page)', async () => {
    const user = await register();
    const someoneElse = await register();
    const sub = subject();
    const signedOut = await link(user.token, sub, { callbackAccess: null });
    expect(signedOut.status).toBe(403);
    const swapped = await link(user.token, subject(), { callbackAccess: someoneElse.token });
    expect(swapped.status).toBe(403);
    expect(await countRows('identities', 'user_id IN (?, ?)', user.id, someoneElse.id)).toBe(0);
  });

  it('needs a signed-in user and a configured provider', async () => {
    const anon = await call('/auth/account/identities/link/oidc', { json: {}, env: e, headers: { origin: 'https://gate.example.com' } });
    expect(anon.status).toBe(401);
    const user = await register();
    const unknown = await call('/auth/account/identities/link/nope', { json: {}, headers: bearer(user.token), env: e });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: 'not_found' });
  });
});

describe('unlink', () => {
  it('unlinks an identity while a password remains, and refuses the last way to sign in (409)', async () => {
    const user = await register();
    const sub = subject();
    expect((await link(user.token, sub)).status).toBe(303);
    const ok = await call('/auth/account/identities/unlink', { json: { provider: 'oidc', subject: sub }, headers: bearer(user.token), env: e });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    expect(await identityOwner(sub)).toBeNull();
    expect(await countRows('auth_events', "user_id = ? AND event = 'identity_unlinked'", user.id)).toBe(1);

    // A provider-only account: its one identity is its only way in.
    const only = subject();
    idp.user = { sub: only, email: `${only}@example.com`, email_verified: true };
    const signedIn = await signIn('oidc', idp, e);
    expect(signedIn.status).toBe(303);
    const access = sessionCookies(signedIn).access;
    const last = await call('/auth/account/identities/unlink', { json: { provider: 'oidc', subject: only }, headers: bearer(access), env: e });
    expect(last.status).toBe(409);
    expect(await last.json()).toMatchObject({ error: 'conflict', error_description: expect.stringContaining('last way to sign in') });
    expect(await identityOwner(only)).not.toBeNull();
  });

  it("refuses someone else's identity as if it did not exist (404), unlinking nothing", async () => {
    const owner = await register();
    const sub = subject();
    expect((await link(owner.token, sub)).status).toBe(303);
    const other = await register();
    const r = await call('/auth/account/identities/unlink', { json: { provider: 'oidc', subject: sub }, headers: bearer(other.token), env: e });
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: 'not_found' });
    expect(await identityOwner(sub)).toBe(owner.id);
  });

  it('as a form post: 303 back to the account page with a notice', async () => {
    const user = await register();
    const sub = subject();
    expect((await link(user.token, sub)).status).toBe(303);
    const r = await call('/auth/account/identities/unlink', { form: { provider: 'oidc', subject: sub }, cookies: { '__Host-gatehouse': user.token }, env: e });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/account?done=identity_unlinked');
  });
});

describe('a new way in needs a recent sign-in, and the owner is told of every one added or removed', () => {
  it('linking with an hour-old sign-in: a browser is sent to step up, an API client gets RFC 9470 max_age, nothing is linked', async () => {
    const user = await register();
    const old = await hourOldToken(user);
    const form = await call('/auth/account/identities/link/oidc', { form: {}, cookies: { '__Host-gatehouse': old }, env: e });
    expect(form.status).toBe(303);
    expect(form.headers.get('location')).toBe('/auth/step-up?return_to=%2Fauth%2Faccount');
    expect(setCookies(form).has(FLOW_COOKIE)).toBe(false);
    const api = await call('/auth/account/identities/link/oidc', { json: {}, headers: bearer(old), env: e });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toContain('error="insufficient_user_authentication"');
    expect(api.headers.get('www-authenticate')).toContain('max_age=600');
    expect(await api.json()).toMatchObject({ error: 'insufficient_user_authentication', max_age: 600 });
    expect(await countRows('identities', 'user_id = ?', user.id)).toBe(0);
  });

  it('a link mails the owner "a sign-in method was added", naming the provider', async () => {
    const user = await register(mailed);
    const sub = subject();
    expect((await link(user.token, sub, { env: mailed })).status).toBe(303);
    expect(await identityOwner(sub)).toBe(user.id);
    const notice = await lastMailFor(user.email);
    expect(notice.subject).toMatch(/A sign-in method was added/);
    expect(notice.text).toContain('OpenID Connect was linked to your account');
    expect(notice.links).toEqual(['https://gate.example.com/auth/account']);
  });

  it('unlinking with an hour-old sign-in is refused the same way; a recent one unlinks and mails "a sign-in method was removed"', async () => {
    const user = await register(mailed);
    const sub = subject();
    expect((await link(user.token, sub, { env: mailed })).status).toBe(303);
    const old = await hourOldToken(user, mailed);
    const api = await call('/auth/account/identities/unlink', { json: { provider: 'oidc', subject: sub }, headers: bearer(old), env: mailed });
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ error: 'insufficient_user_authentication' });
    const form = await call('/auth/account/identities/unlink', { form: { provider: 'oidc', subject: sub }, cookies: { '__Host-gatehouse': old }, env: mailed });
    expect(form.status).toBe(303);
    expect(form.headers.get('location')).toBe('/auth/step-up?return_to=%2Fauth%2Faccount');
    expect(await identityOwner(sub)).toBe(user.id);
    expect((await mailFor(user.email)).filter((m) => /removed/.test(m.subject))).toEqual([]);

    // The token from the sign-in itself is still recent.
    const ok = await call('/auth/account/identities/unlink', { json: { provider: 'oidc', subject: sub }, headers: bearer(user.token), env: mailed });
    expect(ok.status).toBe(200);
    expect(await identityOwner(sub)).toBeNull();
    const notice = await lastMailFor(user.email);
    expect(notice.subject).toMatch(/A sign-in method was removed/);
    expect(notice.text).toContain('OpenID Connect was unlinked from your account');
  });
});
