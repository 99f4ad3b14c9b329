/**
 * Email verification and password reset end to end: a real `wrangler dev` sends
 * real SMTP to the test catcher (smtp-server + mailparser), and a real Chromium follows the
 * mailed links. register -> verify (with the password) -> signed in; forgot -> reset -> the old session refused at
 * /auth/verify; and registration of a taken address answering exactly like a new one.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpCatcher, type SmtpCatcher } from '../support/smtp-catcher';
import { CHROMIUM, Client, ROOT, startGateway, type Gateway } from './harness';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const PASSWORD = 'an end to end passphrase, long';
const NEW_PASSWORD = 'a fresh end to end passphrase';

let gw: Gateway;
let catcher: SmtpCatcher;
let context: BrowserContext;
let profileDir: string;

const unique = (label: string) => `${label}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 6)}@example.com`;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  catcher = await startSmtpCatcher();
  // No EMAIL_VERIFICATION: with a transport it defaults to `required`.
  gw = await startGateway({ vars: { SMTP_URL: catcher.smtpUrl, APP_NAME: 'Acme Notes' } });
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-links-'));
  context = await chromium.launchPersistentContext(profileDir, { ...CHROMIUM });
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  await catcher?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/** The body of a JSON page Chromium shows (e.g. /auth/me). */
async function jsonBody<T>(page: Page): Promise<T> {
  return JSON.parse((await page.locator('body').innerText()).trim()) as T;
}

/** The sign-in form (its page may also hold the create-account form, or link to it). */
async function signIn(page: Page, email: string, password: string, returnTo: string) {
  await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  await page.locator('#login-email').fill(email);
  await page.locator('#login-password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('register -> verify -> sign in, in Chromium', () => {
  it('registers, is told to check the inbox, confirms through the mailed link with the password and lands signed in where it was going', async () => {
    const email = unique('e2e-verify');
    const page = await context.newPage();
    // Registration on its way to /auth/me: the link carries it, and confirming leads there.
    await page.goto(`${gw.url}/auth/register?return_to=${encodeURIComponent('/auth/me')}`);
    await page.locator('#register-email').fill(email);
    await page.locator('#register-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor({ state: 'visible' });
    expect((await context.cookies()).filter((c) => c.name.startsWith('__Host-gatehouse') || c.name.startsWith('__Secure-gatehouse'))).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'verify-check-inbox.png'), fullPage: true });

    // Password sign-in before confirming: refused, with a resend button.
    await signIn(page, email, PASSWORD, '/auth/me');
    await page.getByRole('heading', { name: 'Confirm your email first' }).waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Send a new link' }).waitFor({ state: 'visible' });

    const mail = await catcher.waitForMail(email);
    expect(mail.subject).toBe('Confirm your email for Acme Notes');
    expect(mail.text).toContain('Acme Notes');
    expect(mail.html).toContain('Confirm email');
    const link = mail.links.find((l) => l.startsWith(`${gw.url}/auth/email/verify?token=`));
    expect(link, mail.text).toBeDefined();
    expect(new URL(link!).searchParams.get('return_to')).toBe('/auth/me');

    // Opening the link (as a mail scanner would) uses nothing; the button confirms, with the password.
    expect((await fetch(link!)).status).toBe(200);
    await page.goto(link!);
    await page.getByText(email).first().waitFor({ state: 'visible' });
    await page.getByText('ignore the email').waitFor({ state: 'visible' });
    await page.screenshot({ path: join(ARTIFACTS, 'verify-confirm.png'), fullPage: true });
    // Someone else's password (the mailbox owner's, when a stranger registered the address): refused, the link still works.
    await page.locator('#confirm-password').fill('not the password it was created with');
    await page.getByRole('button', { name: 'Confirm email' }).click();
    await expect(page.getByRole('alert').innerText()).resolves.toContain('not the password');
    expect((await context.cookies()).filter((c) => c.name.startsWith('__Host-gatehouse'))).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'verify-confirm-wrong-password.png'), fullPage: true });
    await page.locator('#confirm-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Confirm email' }).click();
    // Confirmed and signed in: a page says so, and its one button goes on to the registration's return_to.
    await page.getByRole('heading', { name: 'You are signed in' }).waitFor({ state: 'visible' });
    await expect(page.getByRole('status').innerText()).resolves.toContain(email);
    await page.screenshot({ path: join(ARTIFACTS, 'verify-signed-in.png'), fullPage: true });
    await page.locator('a[data-action="next"]').click();
    await page.waitForURL(`${gw.url}/auth/me`);
    expect((await jsonBody<{ user: { email: string; email_verified: boolean } }>(page)).user).toMatchObject({ email, email_verified: true });

    // The same link a second time: a clear page, not a 500.
    const again = await page.goto(link!);
    expect(again!.status()).toBe(400);
    await page.getByRole('heading', { name: 'This link does not work any more' }).waitFor({ state: 'visible' });

    await signIn(page, email, PASSWORD, '/auth/me');
    await page.waitForURL(`${gw.url}/auth/me`);
    const me = await jsonBody<{ user: { email: string; email_verified: boolean } }>(page);
    expect(me.user).toMatchObject({ email, email_verified: true });
    await page.close();
  });
});

describe('forgot -> reset -> old sessions refused', () => {
  it('resets the password through the mailed link in Chromium; the old session is refused at /auth/verify', async () => {
    const email = unique('e2e-reset');
    // An account, confirmed, with a session held by an API client (the "old" session).
    const api = new Client(gw.url);
    expect((await api.fetch('/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status).toBe(202);
    const confirmLink = new URL((await catcher.waitForMail(email)).links[0]!);
    expect((await api.fetch('/auth/email/verify', { method: 'POST', json: { token: confirmLink.searchParams.get('token'), password: PASSWORD } })).status).toBe(200);
    const old = await (await api.fetch('/auth/login', { method: 'POST', json: { email, password: PASSWORD } })).json();
    const oldToken = (old as { access_token: string }).access_token;
    const oldRefresh = (old as { refresh_token: string }).refresh_token;
    expect((await fetch(`${gw.url}/auth/verify`, { headers: { authorization: `Bearer ${oldToken}`, 'x-forwarded-uri': '/' } })).status).toBe(200);

    const page = await context.newPage();
    await page.goto(`${gw.url}/auth/password/forgot`);
    await page.locator('#forgot-email').fill(email);
    await page.getByRole('button', { name: 'Email me a link' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor({ state: 'visible' });

    const mail = await catcher.waitForMail(email, 2);
    expect(mail.subject).toBe('Reset your Acme Notes password');
    const link = mail.links.find((l) => l.startsWith(`${gw.url}/auth/password/reset?token=`));
    expect(link, mail.text).toBeDefined();
    await page.goto(link!);
    await page.screenshot({ path: join(ARTIFACTS, 'reset-form.png'), fullPage: true });
    await page.locator('#reset-password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('heading', { name: 'Password changed' }).waitFor({ state: 'visible' });

    // The old session: refused at forward-auth and at refresh.
    const refused = await fetch(`${gw.url}/auth/verify`, { headers: { authorization: `Bearer ${oldToken}`, 'x-forwarded-uri': '/' } });
    expect(refused.status).toBe(401);
    const refresh = await fetch(`${gw.url}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: oldRefresh }) });
    expect(refresh.status).toBe(401);
    expect(((await refresh.json()) as { error: string }).error).toBe('invalid_token');

    const notice = await catcher.waitForMail(email, 3);
    expect(notice.subject).toBe('Your Acme Notes password was changed');

    // The old password no longer works; the new one does.
    expect((await api.fetch('/auth/login', { method: 'POST', json: { email, password: PASSWORD } })).status).toBe(401);
    await signIn(page, email, NEW_PASSWORD, '/auth/me');
    await page.waitForURL(`${gw.url}/auth/me`);
    expect((await jsonBody<{ user: { email: string } }>(page)).user.email).toBe(email);

    // The reset link is used up.
    expect((await fetch(link!)).status).toBe(400);
    await page.close();
  });
});

describe('the pages at phone width in the dark scheme', () => {
  it('forgot, bad verification link and bad reset link fit a 390 px screen and use the dark palette', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    const pages = [
      ['forgot', '/auth/password/forgot'],
      ['verify-bad-link', '/auth/email/verify?token=not-a-token'],
      ['reset-bad-link', '/auth/password/reset?token=not-a-token'],
    ] as const;
    for (const [name, path] of pages) {
      await page.goto(`${gw.url}${path}`);
      const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
      expect(fits, name).toBe(true);
      // The dark palette's background (ui/styles.ts DARK.bg), so the stylesheet applied under the CSP.
      await expect(page.evaluate(() => getComputedStyle(document.body).backgroundColor)).resolves.toBe('rgb(18, 21, 27)');
      await page.screenshot({ path: join(ARTIFACTS, `account-links-${name}-phone-dark.png`), fullPage: true });
    }
    await page.close();
  });
});

describe('registration does not reveal accounts', () => {
  it('a taken address gets the same status, body and headers as a new one; its owner gets a notice', async () => {
    const owner = unique('e2e-owner');
    const c = new Client(gw.url);
    expect((await c.fetch('/auth/register', { method: 'POST', json: { email: owner, password: PASSWORD } })).status).toBe(202);
    await catcher.waitForMail(owner);

    const taken = await c.fetch('/auth/register', { method: 'POST', json: { email: owner, password: 'someone else trying, long' } });
    const fresh = await c.fetch('/auth/register', { method: 'POST', json: { email: unique('e2e-fresh'), password: 'someone else trying, long' } });
    const headers = (r: Response) => [...r.headers].filter(([k]) => k !== 'date').sort(([a], [b]) => a.localeCompare(b));
    expect(taken.status).toBe(202);
    expect(fresh.status).toBe(taken.status);
    expect(await fresh.text()).toBe(await taken.text());
    expect(headers(fresh)).toEqual(headers(taken));
    expect(taken.headers.getSetCookie()).toEqual([]);
    // The pending account got a fresh link only after the cool-down; a verified owner gets a notice.
    const link = new URL(catcher.mailFor(owner)[0]!.links[0]!);
    expect((await c.fetch('/auth/email/verify', { method: 'POST', json: { token: link.searchParams.get('token'), password: PASSWORD } })).status).toBe(200);
    const again = await c.fetch('/auth/register', { method: 'POST', json: { email: owner, password: 'someone else trying, long' } });
    expect(again.status).toBe(202);
    const notice = await catcher.waitForMail(owner, 2);
    expect(notice.subject).toBe('Someone tried to create an account with your email on Acme Notes');
  });
});
