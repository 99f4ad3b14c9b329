/**
 * Passkeys in a real Chromium with a virtual authenticator (the DevTools protocol's WebAuthn
 * domain through playwright-core's CDP session): register a password account, add a passkey
 * on the account page, sign out, sign in with the passkey alone. And the same pages without
 * JavaScript: no passkey button, the password forms still work.
 *
 * The gateway runs as http://localhost:<port>: WebAuthn needs a domain name as rp id (an IP
 * address is refused) and a secure context (localhost is one).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, ROOT, startGateway, type Gateway } from './harness';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const PASSWORD = 'correct horse battery staple';

let gw: Gateway;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  gw = await startGateway({ host: 'localhost' });
  browser = await chromium.launch({ ...CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

describe('passkeys in Chromium with a virtual authenticator', () => {
  it('adds a passkey on the account page, signs out, and signs in with the passkey alone', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      // The browser's own /favicon.ico request is the proxy's 404 (no ROUTES here): not ours.
      if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) errors.push(`${m.text()} ${m.location().url}`);
    });

    // A password account, signed in, on the account page.
    const email = `passkey-${Date.now()}@example.com`;
    await page.goto(`${gw.url}/auth/register?return_to=${encodeURIComponent('/auth/account')}`);
    await page.fill('#register-email', email);
    await page.fill('#register-password', PASSWORD);
    await page.click('button:has-text("Create account")');
    await page.waitForURL(`${gw.url}/auth/account`);

    // The script shows the add form (it is hidden without JavaScript); add a named passkey.
    const add = page.locator('#passkey-add');
    await add.waitFor({ state: 'visible' });
    await page.fill('#passkey-add-name', 'E2E authenticator');
    await add.locator('button[type="submit"]').click();
    // The account's first second factor: its ten recovery codes, shown this once, then on.
    const codes = page.locator('#recovery-codes li');
    await codes.first().waitFor({ state: 'visible' });
    await expect.poll(() => codes.count(), { timeout: 10_000 }).toBe(10);
    await expect(page.locator('#codes-download').getAttribute('href')).resolves.toMatch(/^data:text\/plain/);
    await page.screenshot({ path: join(ARTIFACTS, 'passkeys-recovery-codes.png'), fullPage: true });
    await page.getByLabel('I have saved these codes somewhere safe').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${gw.url}/auth/account?done=passkey_added`);
    await expect(page.locator('#notice').innerText()).resolves.toBe('Your passkey has been added.');
    const rows = page.locator('#passkey-list tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
    await expect(rows.first().locator('input[name="name"]').inputValue()).resolves.toBe('E2E authenticator');
    await page.screenshot({ path: join(ARTIFACTS, 'passkeys-account.png'), fullPage: true });

    // The authenticator holds one discoverable credential for this rp id.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
    const countAtRegistration = credentials[0]!.signCount;

    // Sign out everywhere, then sign in with the passkey alone.
    await page.click('button:has-text("Sign out everywhere")');
    await page.waitForURL(/\/auth\/login\?done=signed_out_everywhere$/);
    expect((await context.cookies(gw.url)).map((c) => c.name)).not.toContain('__Host-gatehouse');

    // The button: in this page conditional UI is reported unavailable, so the button is the
    // only way in (the virtual authenticator would otherwise answer the autofill request itself).
    await page.addInitScript(() => {
      PublicKeyCredential.isConditionalMediationAvailable = async () => false;
    });
    await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent('/auth/me')}`);
    await expect(page.locator('#login-email').getAttribute('autocomplete')).resolves.toBe('username webauthn');
    const button = page.getByRole('button', { name: 'Sign in with a passkey' });
    await button.waitFor({ state: 'visible' });
    await page.screenshot({ path: join(ARTIFACTS, 'passkeys-sign-in.png'), fullPage: true });
    await button.click();
    await page.waitForURL(`${gw.url}/auth/me`);
    const me = JSON.parse((await page.locator('body').innerText()).trim()) as { user: { email: string }; session: { provider: string } };
    expect(me.user.email).toBe(email);
    expect(me.session.provider).toBe('passkey');
    const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(after.credentials[0]!.signCount).toBeGreaterThan(countAtRegistration);

    // Conditional UI: on a fresh page the sign-in page asks with `mediation: "conditional"` at
    // load; the virtual authenticator (automatic presence) answers it, with no click at all.
    await page.goto(`${gw.url}/auth/account`);
    await page.click('button:has-text("Sign out everywhere")');
    await page.waitForURL(/\/auth\/login\?done=signed_out_everywhere$/);
    const autofill = await context.newPage();
    const cdp2 = await autofill.context().newCDPSession(autofill);
    await cdp2.send('WebAuthn.enable');
    const second = await cdp2.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    const stored = credentials[0]!;
    await cdp2.send('WebAuthn.addCredential', { authenticatorId: second.authenticatorId, credential: { ...after.credentials[0]!, rpId: stored.rpId } });
    autofill.on('pageerror', (e) => errors.push(e.message));
    await autofill.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent('/auth/me')}`);
    await autofill.waitForURL(`${gw.url}/auth/me`);
    const me2 = JSON.parse((await autofill.locator('body').innerText()).trim()) as { user: { email: string }; session: { provider: string } };
    expect(me2).toMatchObject({ user: { email }, session: { provider: 'passkey' } });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('without JavaScript: no passkey button or add form, and password sign-in still works', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const email = `nojs-${Date.now()}@example.com`;
    await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent('/auth/account')}`);
    await expect(page.locator('#passkey-signin').isVisible()).resolves.toBe(false);
    await expect(page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible()).resolves.toBe(false);
    await page.click('#to-register'); // the create-account view has its own URL
    await page.fill('#register-email', email);
    await page.fill('#register-password', PASSWORD);
    await page.click('button:has-text("Create account")');
    await page.waitForURL(`${gw.url}/auth/account`);
    await expect(page.locator('#passkeys h3').innerText()).resolves.toBe('Passkeys');
    await expect(page.locator('#passkey-add').isVisible()).resolves.toBe(false);
    await expect.poll(() => page.locator('#passkeys noscript').count(), { timeout: 10_000 }).toBe(1);
    await context.close();
  });
});
