/**
 * The console's Apps and machines area in a real Chromium (JavaScript off) against a real
 * `wrangler dev`: an admin with a second factor registers a client (a mistake first, named on
 * the form), copies its secret from the page that shows it once (its address has no secret),
 * rotates it with an overlap, creates a SCIM token, and looks up a user's consents. Screenshots
 * at desktop width and at 375 px go to test-artifacts/.
 */
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminWithoutJavaScript, ARTIFACTS, consoleWalk, PROVIDER_NAME, shoot } from './console-admin';
import { Client } from './harness';

const stamp = Date.now().toString(36);
const adminEmail = `apps-admin-${stamp}@example.com`;
const userEmail = `apps-user-${stamp}@example.com`;

let noJs: BrowserContext;

const walk = consoleWalk(adminEmail);

beforeAll(async () => {
  noJs = await adminWithoutJavaScript(walk.browser, walk.gw, PROVIDER_NAME);
});

afterAll(async () => {
  await noJs?.close();
});

describe('the Apps and machines area in Chromium', () => {
  it('registers a client, shows its secret once, rotates it with an overlap, creates a SCIM token and finds consents, without JavaScript', async () => {
    expect((await new Client(walk.gw.url).fetch('/auth/register', { method: 'POST', json: { email: userEmail, password: 'an e2e passphrase that is long' } })).status).toBe(201);
    const p = await noJs.newPage();
    await p.goto(`${walk.gw.url}/auth/admin`);
    await p.locator('.console-nav').getByRole('link', { name: 'Apps and machines' }).click();
    await p.waitForURL(`${walk.gw.url}/auth/admin/console/apps`);
    await p.getByRole('link', { name: 'Register a client' }).click();
    await p.waitForURL(/\/clients\/new$/);

    // A mistake first: named beside its field, nothing registered.
    await p.getByLabel('Name').fill('Billing portal');
    await p.getByLabel('Redirect URIs', { exact: true }).fill('http://billing.example.org/callback');
    await p.getByLabel('Audiences (resources its tokens may be for)').fill('https://api.example.org/billing');
    await p.getByRole('button', { name: 'Register' }).click();
    await expect(p.locator('#client-redirects-error').innerText()).resolves.toContain('must use https');
    await shoot(p, 'console-apps-register-error');

    await p.getByLabel('Redirect URIs', { exact: true }).fill('https://billing.example.org/callback');
    await p.getByRole('button', { name: 'Register' }).click();
    await expect(p.locator('h1').innerText()).resolves.toBe('Register “Billing portal”?');
    await shoot(p, 'console-apps-register-confirm');
    await p.getByRole('button', { name: 'Register the client' }).click();
    const secret = await p.locator('#new-secret').innerText();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.url()).not.toContain(secret);
    expect(p.url()).toMatch(/\/clients\/new$/);
    await shoot(p, 'console-apps-secret-once');

    await p.getByRole('link', { name: 'I have copied it: go to the client' }).click();
    await p.waitForURL(/\/clients\/cli_/);
    await expect(p.locator('h1').innerText()).resolves.toBe('Billing portal');
    await expect(p.content()).resolves.not.toContain(secret);
    await p.getByLabel('Keep the old secret working for').selectOption({ label: '7 days' });
    await p.getByRole('button', { name: 'Rotate the secret' }).click();
    await p.getByRole('button', { name: 'Rotate the secret' }).click();
    const rotated = await p.locator('#new-secret').innerText();
    expect(rotated).not.toBe(secret);
    await expect(p.locator('#previous-state').innerText()).resolves.toMatch(/^The previous secret works until \d{4}-/);
    await p.getByRole('link', { name: 'I have copied it: back to the client' }).click();
    await expect(p.locator('#rotation-state').innerText()).resolves.toMatch(/^Rotated: the previous secret also works until/);
    await shoot(p, 'console-apps-client');

    await p.locator('.toc').first().getByRole('link', { name: 'Clients' }).click();
    await expect.poll(() => p.locator('#clients tbody tr').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    await shoot(p, 'console-apps-clients');

    await p.getByRole('link', { name: 'SCIM tokens' }).click();
    await p.getByLabel('Name').fill('Okta production');
    await p.getByRole('button', { name: 'Create' }).click();
    await p.getByRole('button', { name: 'Create the token' }).click();
    const token = await p.locator('#new-secret').innerText();
    expect(token).toMatch(/^scim_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    await shoot(p, 'console-apps-scim-token-once');
    await p.getByRole('link', { name: 'I have copied it: go to the token' }).click();
    await shoot(p, 'console-apps-scim-token');

    await p.getByRole('link', { name: 'Consent grants' }).click();
    await p.getByLabel('Email').fill(userEmail);
    await p.getByRole('button', { name: 'Show consents' }).click();
    await expect(p.locator('#no-consents').innerText()).resolves.toContain('has allowed no app');
    await shoot(p, 'console-apps-consents');
    await p.emulateMedia({ colorScheme: 'dark' });
    await p.setViewportSize({ width: 375, height: 812 });
    await p.goto(`${walk.gw.url}/auth/admin/console/apps/clients/new`);
    await p.screenshot({ path: `${ARTIFACTS}/console-apps-register-dark-375.png`, fullPage: true });
  });
});
