/**
 * The operators' console in a real Chromium against a real `wrangler dev`. An admin (a verified
 * address in ADMIN_EMAILS, signed in through OpenID Connect) opens the console, is told a second
 * factor is needed, sets up an authenticator app (codes computed here with otpauth, as a phone
 * would), and opens it again. Then, in a browser context with JavaScript turned off, the admin
 * searches a user, views them, disables them through the confirmation step, and reads the
 * notice. Screenshots at desktop width and at 375 px go to test-artifacts/.
 */
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS, consoleWalk, shoot } from './console-admin';
import { Client } from './harness';

const stamp = Date.now().toString(36);
const adminEmail = `console-admin-${stamp}@example.com`;
const targetEmail = `console-target-${stamp}@example.com`;
const password = 'an e2e passphrase that is long';


const walk = consoleWalk(adminEmail);


const code = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret) }).generate();


describe('the console in Chromium', () => {
  it('an admin with a second factor finds a user, views them and disables them with confirmation, without JavaScript', async () => {
    const target = await new Client(walk.gw.url).fetch('/auth/register', { method: 'POST', json: { email: targetEmail, password } });
    expect(target.status).toBe(201);

    const context = await walk.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${walk.gw.url}/auth/login?return_to=${encodeURIComponent('/auth/admin')}`);
    await page.getByRole('link', { name: 'Continue with Mock SSO' }).click();
    // Signed in without a second factor: the console sends the admin to step up, which says one is needed.
    await page.waitForURL(/\/auth\/step-up\?return_to=%2Fauth%2Fadmin$/);
    await expect(page.locator('h1').innerText()).resolves.toBe('A second factor is needed');
    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await page.waitForURL(`${walk.gw.url}/auth/account/totp`);
    const secret = (await page.locator('#totp-secret').innerText()).replaceAll(' ', '');
    await page.fill('#totp-code', code(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.locator('#recovery-codes li').first().waitFor();
    await page.getByLabel('I have saved these codes somewhere safe').check();
    await page.getByRole('button', { name: 'Back to your account' }).click();
    await page.waitForURL(/\/auth\/account/);

    // Setting up the app stepped the session up: the console opens.
    await page.goto(`${walk.gw.url}/auth/admin`);
    await expect(page.locator('h1').innerText()).resolves.toBe('Console');
    await shoot(page, 'console-home');

    // The same session in a browser that runs no JavaScript.
    const noJs = await walk.browser.newContext({ javaScriptEnabled: false });
    await noJs.addCookies(await context.cookies(walk.gw.url));
    await context.close();
    const p = await noJs.newPage();
    await p.goto(`${walk.gw.url}/auth/admin`);
    await p.locator('.console-nav').getByRole('link', { name: 'Users' }).click();
    await p.waitForURL(`${walk.gw.url}/auth/admin/console/users`);
    await p.getByLabel('Email or name contains').fill(`console-target-${stamp}`);
    await p.getByRole('button', { name: 'Search' }).click();
    await p.waitForURL(/\/auth\/admin\/console\/users\?q=/);
    await expect.poll(() => p.locator('#users tbody tr').count(), { timeout: 10_000 }).toBe(1);
    await shoot(p, 'console-users-search');

    await p.getByRole('link', { name: targetEmail }).click();
    await p.waitForURL(/\/auth\/admin\/console\/users\/usr_/);
    await expect(p.locator('h1').innerText()).resolves.toBe(targetEmail);
    await expect.poll(() => p.locator('#sessions tbody tr').count(), { timeout: 10_000 }).toBe(1);
    await shoot(p, 'console-user');

    await p.getByRole('button', { name: 'Disable' }).click();
    await expect(p.locator('h1').innerText()).resolves.toBe(`Disable ${targetEmail}?`);
    await shoot(p, 'console-confirm-disable');
    await p.getByRole('button', { name: 'Disable the user' }).click();
    await p.waitForURL(/\?done=disabled$/);
    await expect(p.locator('#notice').innerText()).resolves.toBe('The user is disabled and every session of theirs has ended.');
    await expect(p.locator('#status').innerText()).resolves.toMatch(/^Disabled since/);
    await shoot(p, 'console-user-disabled');
    await p.emulateMedia({ colorScheme: 'dark' });
    await p.setViewportSize({ width: 375, height: 812 });
    await p.screenshot({ path: join(ARTIFACTS, 'console-user-disabled-dark-375.png'), fullPage: true });
    await noJs.close();

    // Disabled for real: the password no longer signs in.
    const login = await new Client(walk.gw.url).fetch('/auth/login', { method: 'POST', json: { email: targetEmail, password } });
    expect(login.status).toBeGreaterThanOrEqual(400);
  });
});
