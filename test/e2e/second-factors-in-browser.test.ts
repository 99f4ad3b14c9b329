/**
 * Second factors in a real Chromium against a real `wrangler dev`: set up an authenticator app on
 * the account page (the key read from the page, codes computed here with otpauth, as a phone
 * would), sign out, sign in with password + code, and a route with `require = ["mfa"]` that
 * sends a password-only session through the step-up page and back.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, Client, freePort, ROOT, startGateway, type Gateway } from './harness';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const email = `totp-${Date.now()}@example.com`;
const password = 'an e2e passphrase that is long';

let gw: Gateway;
let origin: Server;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // The origin echoes the identity headers it received.
  const port = await freePort();
  origin = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, amr: req.headers['x-auth-amr'] ?? null, email: req.headers['x-auth-email'] ?? null }));
  });
  await new Promise<void>((done) => origin.listen(port, '127.0.0.1', done));
  gw = await startGateway({
    vars: { ROUTES: JSON.stringify([{ path: '/secure', origin: `http://127.0.0.1:${port}`, auth: 'required', require: ['mfa'] }]) },
  });
  browser = await chromium.launch({ ...CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await new Promise((done) => origin?.close(done));
});

/** Codes as an authenticator app shows them, each for a later time step than the last (a code works once). */
function authenticator(secret: string) {
  const totp = new TOTP({ secret: Secret.fromBase32(secret) });
  let last = -Infinity;
  return async (): Promise<string> => {
    let step = Math.max(last + 1, Math.floor(Date.now() / 30_000) - 1);
    // Within the gateway's ±1 step window; otherwise wait for the clock to catch up.
    while (step > Math.floor(Date.now() / 30_000) + 1) await new Promise((r) => setTimeout(r, 1000));
    last = step;
    return totp.generate({ timestamp: step * 30_000 });
  };
}

async function signIn(page: Page, returnTo: string) {
  await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function body(page: Page) {
  return JSON.parse((await page.locator('body').innerText()).trim()) as { path: string; amr: string | null; email: string | null };
}

describe('second factors in Chromium', () => {
  let early: BrowserContext;
  let nextCode: () => Promise<string>;

  it('sets up an authenticator app on the account page, signs out, and signs in with password + code', async () => {
    const reg = await new Client(gw.url).fetch('/auth/register', { method: 'POST', json: { email, password } });
    expect(reg.status).toBe(201);

    // A second browser signed in now, before the app exists: its session is password-only.
    early = await browser.newContext();
    const earlyPage = await early.newPage();
    await signIn(earlyPage, '/auth/me');
    await earlyPage.waitForURL(`${gw.url}/auth/me`);

    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, '/auth/account');
    await page.waitForURL(`${gw.url}/auth/account`);
    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await page.waitForURL(`${gw.url}/auth/account/totp`);
    await page.locator('.qr svg').waitFor({ state: 'visible' });
    await page.screenshot({ path: join(ARTIFACTS, 'totp-enrol.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACTS, 'totp-enrol-dark-phone.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    const secret = (await page.locator('#totp-secret').innerText()).replaceAll(' ', '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    nextCode = authenticator(secret);

    await page.fill('#totp-code', await nextCode());
    await page.getByRole('button', { name: 'Turn on' }).click();
    // The click submits a form: wait for the page that answers it before counting.
    await page.locator('#recovery-codes li').first().waitFor();
    await expect.poll(() => page.locator('#recovery-codes li').count(), { timeout: 10_000 }).toBe(10);
    await page.screenshot({ path: join(ARTIFACTS, 'totp-recovery-codes.png'), fullPage: true });
    // Going on needs the "I have saved these codes" box: without it the browser stays on the page.
    await page.getByRole('button', { name: 'Back to your account' }).click();
    await expect.poll(() => page.locator('#recovery-codes li').count(), { timeout: 10_000 }).toBe(10);
    await page.getByLabel('I have saved these codes somewhere safe').check();
    await page.getByRole('button', { name: 'Back to your account' }).click();
    await expect(page.locator('#totp-status').innerText()).resolves.toContain('Authenticator app: on');

    // Sign out this device, then sign in again: the password alone is not enough.
    await page.getByRole('button', { name: 'Sign out this device' }).click();
    await page.waitForURL(/\/auth\/login/);
    expect((await context.cookies(gw.url)).map((c) => c.name)).not.toContain('__Host-gatehouse');
    await signIn(page, '/secure/after-sign-in');
    await page.waitForURL(`${gw.url}/auth/mfa`);
    expect((await context.cookies(gw.url)).map((c) => c.name)).not.toContain('__Host-gatehouse');
    await page.screenshot({ path: join(ARTIFACTS, 'totp-code-page.png'), fullPage: true });
    await page.fill('#code', await nextCode());
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(`${gw.url}/secure/after-sign-in`);
    expect(await body(page)).toMatchObject({ path: '/secure/after-sign-in', amr: 'pwd,otp,mfa', email });
    await context.close();
  });

  it('a password-only session is sent to the step-up page by a require = ["mfa"] route, and comes back', async () => {
    const page = await early.newPage();
    await page.goto(`${gw.url}/secure/report?id=7`);
    await page.waitForURL(/\/auth\/step-up\?return_to=/);
    // A recent password sign-in: the code alone steps up.
    await expect.poll(() => page.locator('#password').count(), { timeout: 10_000 }).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'totp-step-up.png'), fullPage: true });
    await page.fill('#code', await nextCode());
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${gw.url}/secure/report?id=7`);
    expect(await body(page)).toMatchObject({ path: '/secure/report?id=7', amr: 'pwd,otp,mfa' });
    await early.close();
  });
});
