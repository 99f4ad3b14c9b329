/**
 * A real Chromium (Debian's, driven by playwright-core) signs in through the OpenID Connect
 * button: login page -> gateway -> mock provider -> callback -> back at return_to, signed in.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidcServer } from '../../scripts/dev/oidc-server.mjs';
import { CHROMIUM, freePort, ROOT, startGateway, type Gateway } from './harness';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const email = `browser-${Date.now()}@example.com`;

let gw: Gateway;
let idp: Awaited<ReturnType<typeof startDevOidcServer>>;
let context: BrowserContext;
let profileDir: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  idp = await startDevOidcServer({ port: await freePort(), claims: () => ({ sub: `browser:${email}`, email, email_verified: true, name: 'Browser User' }) });
  gw = await startGateway({ vars: { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: 'gatehouse-browser', OIDC_CLIENT_SECRET: 'browser-secret', OIDC_NAME: 'Mock SSO' } });
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));
  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(profileDir, { ...CHROMIUM });
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  await idp?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

describe('browser sign-in with OpenID Connect', () => {
  it('clicks the provider button, completes at the provider and lands back signed in', async () => {
    const page = await context.newPage();
    const seen: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) seen.push(frame.url());
    });

    await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent('/auth/me')}`);
    const button = page.getByRole('link', { name: 'Continue with Mock SSO' });
    await button.waitFor({ state: 'visible' });
    // The page's nonce-tagged stylesheet is allowed by its CSP (a link styled as a block button).
    await expect(button.evaluate((el) => getComputedStyle(el).display)).resolves.toBe('block');
    await page.screenshot({ path: join(ARTIFACTS, 'oidc-sign-in-page.png'), fullPage: true });

    await button.click();
    await page.waitForURL(`${gw.url}/auth/me`);
    const me = JSON.parse((await page.locator('body').innerText()).trim()) as { user: { email: string; email_verified: boolean }; session: { provider: string } };
    expect(me.user).toMatchObject({ email, email_verified: true });
    expect(me.session.provider).toBe('oidc');
    await page.screenshot({ path: join(ARTIFACTS, 'oidc-signed-in.png') });

    // The callback URL (with code and state) was passed through, and is not where we ended.
    expect(seen.at(-1)).toBe(`${gw.url}/auth/me`);
    const cookies = await context.cookies(gw.url);
    const names = cookies.map((c) => c.name).sort();
    expect(names).toContain('__Host-gatehouse');
    expect(names).not.toContain('__Host-gatehouse-oauth');
    expect(cookies.find((c) => c.name === '__Host-gatehouse')).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax' });
  });
});
