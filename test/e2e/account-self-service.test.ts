/**
 * Account self-service end to end: a real `wrangler dev`, a real SMTP server
 * (the catcher), the dev OpenID Connect server, and Chromium on the account page.
 *
 * The browser is signed in by copying a cookie-mode sign-in into it (the sign-in page itself is
 * another test's subject): change the password (another session's token is refused afterwards),
 * link a provider, change the email through the mailed link (the old address is told), delete the
 * account (then password sign-in fails and the provider identity is gone: signing in with it makes
 * a new account).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidcServer } from '../../scripts/dev/oidc-server.mjs';
import { startSmtpCatcher, type SmtpCatcher } from '../support/smtp-catcher';
import { CHROMIUM, freePort, ROOT, startGateway, type Gateway } from './harness';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const stamp = Date.now();
const email = `self-service-${stamp}@example.com`;
const newEmail = `moved-${stamp}@example.com`;
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a whole new phrase for the gate';
const oidcSubject = `self-service:${stamp}`;

let gw: Gateway;
let idp: Awaited<ReturnType<typeof startDevOidcServer>>;
let catcher: SmtpCatcher;
let context: BrowserContext;
let profileDir: string;
let page: Page;

interface Me {
  user: { id: string; email: string };
}

async function json(path: string, init: { body?: unknown; token?: string; method?: string } = {}) {
  const headers: Record<string, string> = { origin: gw.url };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  return fetch(`${gw.url}${path}`, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), redirect: 'manual' });
}

/** Signs the browser in: a cookie-mode JSON sign-in whose cookies are handed to Chromium. */
async function signInBrowser(address: string, password: string) {
  const r = await json('/auth/login', { body: { email: address, password, session: 'cookie' } });
  expect(r.status).toBe(200);
  await context.addCookies(
    r.headers.getSetCookie().map((line) => {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const path = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      return { name: pair!.slice(0, i).trim(), value: pair!.slice(i + 1).trim(), domain: '127.0.0.1', path, secure: true, httpOnly: true, sameSite: 'Lax' as const };
    }),
  );
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  catcher = await startSmtpCatcher();
  idp = await startDevOidcServer({ port: await freePort(), claims: () => ({ sub: oidcSubject, email: `sso-${stamp}@example.org`, email_verified: true, name: 'SSO User' }) });
  gw = await startGateway({ vars: { SMTP_URL: catcher.smtpUrl, EMAIL_VERIFICATION: 'off', OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: 'gatehouse-e2e', OIDC_CLIENT_SECRET: 'e2e-secret', OIDC_NAME: 'Mock SSO' } });
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, { ...CHROMIUM });
  page = await context.newPage();
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  await idp?.stop();
  await catcher?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

describe('account self-service in a browser', () => {
  let otherToken: string;
  let userId: string;

  it('changes the password on the account page; another session of the account is refused afterwards', async () => {
    const registered = await json('/auth/register', { body: { email, password: PASSWORD } });
    expect(registered.status).toBe(201);
    const body = (await registered.json()) as { access_token: string; user: { id: string } };
    otherToken = body.access_token;
    userId = body.user.id;
    expect((await json('/auth/me', { token: otherToken })).status).toBe(200);

    await signInBrowser(email, PASSWORD);
    await page.goto(`${gw.url}/auth/account`);
    await page.locator('#current-password').fill(PASSWORD);
    await page.locator('#new-password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.waitForURL(`${gw.url}/auth/account?done=password_changed`);
    await expect(page.locator('#notice').innerText()).resolves.toContain('Your password has been changed.');
    await page.screenshot({ path: join(ARTIFACTS, 'account-password-changed.png'), fullPage: true });

    const refused = await json('/auth/me', { token: otherToken });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_token' });
    expect((await catcher.waitForMail(email)).subject).toMatch(/password was changed/);
    expect((await json('/auth/login', { body: { email, password: PASSWORD } })).status).toBe(401);
  });

  it('links the provider from the account page', async () => {
    await page.goto(`${gw.url}/auth/account`);
    await page.getByRole('button', { name: 'Link Mock SSO' }).click();
    await page.getByRole('link', { name: 'Continue to Mock SSO' }).click();
    await page.waitForURL(`${gw.url}/auth/account?done=identity_linked`);
    await expect(page.locator('#providers').innerText()).resolves.toContain('Mock SSO');
    // A new way into the account: its owner is told.
    expect((await catcher.waitForMail(email, 2)).subject).toMatch(/A sign-in method was added/);
  });

  it('changes the email through the link mailed to the new address; the old address is told', async () => {
    await page.goto(`${gw.url}/auth/account`);
    await page.locator('#new-email').fill(newEmail);
    await page.locator('#email-current-password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Send confirmation link' }).click();
    await page.waitForURL(`${gw.url}/auth/account?done=email_link_sent`);
    // The present address hears of the request before anything changes.
    expect((await catcher.waitForMail(email, 3)).subject).toMatch(/A change of your email address was requested/);

    const mail = await catcher.waitForMail(newEmail);
    const link = mail.links.find((l) => l.includes('/auth/account/email/confirm'))!;
    expect(link.startsWith(`${gw.url}/auth/account/email/confirm?token=`)).toBe(true);
    await page.goto(link);
    await expect(page.locator('#new-address').innerText()).resolves.toBe(newEmail);
    await page.getByRole('button', { name: 'Confirm new address' }).click();
    await expect(page.locator('#notice').innerText()).resolves.toContain(`Your account now uses ${newEmail}.`);

    const notice = await catcher.waitForMail(email, 4);
    expect(notice.subject).toMatch(/email address of your .* account was changed/);
    expect(notice.text).toContain(newEmail);
    expect((await json('/auth/login', { body: { email: newEmail, password: NEW_PASSWORD } })).status).toBe(200);
  });

  it('deletes the account: then password sign-in fails and the provider identity is gone', async () => {
    await page.goto(`${gw.url}/auth/account`);
    await page.locator('#delete-password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await page.waitForURL(`${gw.url}/auth/account/deleted`);
    await expect(page.locator('#notice').innerText()).resolves.toContain('Your account has been deleted');
    await page.screenshot({ path: join(ARTIFACTS, 'account-deleted.png'), fullPage: true });
    expect((await catcher.waitForMail(newEmail, 2)).subject).toMatch(/account was deleted/);

    const login = await json('/auth/login', { body: { email: newEmail, password: NEW_PASSWORD } });
    expect(login.status).toBe(401);
    expect(await login.json()).toMatchObject({ error: 'invalid_credentials' });

    // The identity went with the account: signing in with the provider now makes a new account.
    await page.goto(`${gw.url}/auth/login/oidc?return_to=${encodeURIComponent('/auth/me')}`);
    await page.waitForURL(`${gw.url}/auth/me`);
    const me = JSON.parse((await page.locator('body').innerText()).trim()) as Me;
    expect(me.user.id).not.toBe(userId);
    expect(me.user.email).toBe(`sso-${stamp}@example.org`);
  });
});
