/**
 * What the console's Chromium walks share: an admin (a verified address in ADMIN_EMAILS, signed
 * in through OpenID Connect) who sets up an authenticator app when the console asks for a
 * second factor (codes computed here with otpauth, as a phone would), and screenshots at
 * desktop width and at 375 px that fail when anything is wider than the phone.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { startDevOidcServer } from '../../scripts/dev/oidc-server.mjs';
import { CHROMIUM, freePort, ROOT, startGateway, type Gateway } from './harness';

export const ARTIFACTS = join(ROOT, 'test-artifacts');

const code = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret) }).generate();

/** The provider's name on the sign-in page of a console walk's gateway. */
export const PROVIDER_NAME = 'Mock SSO';

/** What a console walk runs against, once the file's tests have begun. */
export interface ConsoleWalk {
  readonly gw: Gateway;
  readonly browser: Browser;
}

/**
 * Starts, before the file's tests, a dev OpenID Connect server that signs `adminEmail` in with
 * a verified address, a gateway whose ADMIN_EMAILS names it (with `vars` besides: ROUTES...) and
 * a Chromium; stops them after the tests. Read `gw` and `browser` inside the tests.
 */
export function consoleWalk(adminEmail: string, vars: Record<string, string> = {}): ConsoleWalk {
  let idp: Awaited<ReturnType<typeof startDevOidcServer>> | undefined;
  let gw: Gateway | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    idp = await startDevOidcServer({ port: await freePort(), claims: () => ({ sub: `console:${adminEmail}`, email: adminEmail, email_verified: true, name: 'Console Admin' }) });
    gw = await startGateway({ vars: { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: 'gatehouse-console', OIDC_CLIENT_SECRET: 'console-secret', OIDC_NAME: PROVIDER_NAME, ADMIN_EMAILS: adminEmail, ...vars } });
    browser = await chromium.launch({ ...CHROMIUM });
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await idp?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the console walk has not started: read it inside a test');
    return value;
  };
  return {
    get gw() {
      return started(gw);
    },
    get browser() {
      return started(browser);
    },
  };
}

/** Screenshots of the page at desktop width and at 375 px (then back to desktop). */
export async function shoot(page: Page, name: string) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 375, height: 812 });
  await page.screenshot({ path: join(ARTIFACTS, `${name}-375.png`), fullPage: true });
  // Nothing is wider than the phone's screen (else: which element sticks out).
  const wide = await page.evaluate(() => {
    const over = [...document.querySelectorAll('body *')].find((el) => el.getBoundingClientRect().right > 375.5);
    return { width: document.documentElement.scrollWidth, over: over ? `${over.tagName}#${over.id}.${over.className}: ${over.textContent?.slice(0, 60)}` : null };
  });
  expect(wide, `${name} at 375 px`).toEqual({ width: 375, over: null });
  await page.setViewportSize({ width: 1280, height: 900 });
}

/**
 * Signs the admin in with the provider (`providerName`'s button), sets up an authenticator app
 * when the console asks for a second factor, and returns a browser context with JavaScript
 * turned off holding that stepped-up session.
 */
export async function adminWithoutJavaScript(browser: Browser, gw: Gateway, providerName: string, contextOptions: { acceptDownloads?: boolean } = {}): Promise<BrowserContext> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent('/auth/admin')}`);
  await page.getByRole('link', { name: `Continue with ${providerName}` }).click();
  await page.waitForURL(/\/auth\/step-up\?return_to=%2Fauth%2Fadmin$/);
  await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
  await page.waitForURL(`${gw.url}/auth/account/totp`);
  const secret = (await page.locator('#totp-secret').innerText()).replaceAll(' ', '');
  await page.fill('#totp-code', code(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.locator('#recovery-codes li').first().waitFor();
  await page.getByLabel('I have saved these codes somewhere safe').check();
  await page.getByRole('button', { name: 'Back to your account' }).click();
  await page.waitForURL(/\/auth\/account/);
  const noJs = await browser.newContext({ ...contextOptions, javaScriptEnabled: false });
  await noJs.addCookies(await context.cookies(gw.url));
  await context.close();
  return noJs;
}
