/**
 * The console's Sessions and Audit log areas in a real Chromium against a real `wrangler dev`,
 * without JavaScript. An admin (ADMIN_EMAILS, OpenID Connect, an authenticator app set up as
 * the first console visit asks) filters the live sessions by a user, selects both of the
 * user's sessions, ends them through the confirmation step; the user's token is refused from
 * then on. In the Audit log the admin finds the ending (with the admin named) and the refused
 * token's security event, marked, and downloads the filtered log as CSV. Screenshots at 1280
 * and 375 px go to test-artifacts/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminWithoutJavaScript, ARTIFACTS, consoleWalk, PROVIDER_NAME, shoot } from './console-admin';
import { Client } from './harness';

const stamp = Date.now().toString(36);
const adminEmail = `console-sa-admin-${stamp}@example.com`;
const userEmail = `console-sa-user-${stamp}@example.com`;
const password = 'an e2e passphrase that is long';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0';
const SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1';


const walk = consoleWalk(adminEmail);




/** A password sign-in from a given browser: the user's access token. */
async function signInAs(userAgent: string): Promise<string> {
  const r = await new Client(walk.gw.url).fetch('/auth/login', { method: 'POST', json: { email: userEmail, password }, headers: { 'user-agent': userAgent } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}

describe('the console’s Sessions and Audit log in Chromium', () => {
  it('an admin ends a user’s sessions with checkboxes and confirmation, then finds it in the audit log and exports it, without JavaScript', async () => {
    expect((await new Client(walk.gw.url).fetch('/auth/register', { method: 'POST', json: { email: userEmail, password } })).status).toBe(201);
    const laptop = await signInAs(FIREFOX);
    await signInAs(SAFARI);

    // The admin signs in and sets up the authenticator app the console asks for.
    const noJs = await adminWithoutJavaScript(walk.browser, walk.gw, PROVIDER_NAME, { acceptDownloads: true });
    const p = await noJs.newPage();
    await p.goto(`${walk.gw.url}/auth/admin`);
    await p.locator('.console-nav').getByRole('link', { name: 'Sessions' }).click();
    await p.waitForURL(`${walk.gw.url}/auth/admin/console/sessions`);
    // The user's register session, the two sign-ins, and the admin's own.
    await expect.poll(() => p.locator('#sessions tbody tr').count(), { timeout: 10_000 }).toBe(4);
    await shoot(p, 'console-sessions');

    await p.getByLabel('User (email or id)').fill(userEmail);
    await p.getByLabel('Device contains').fill('firefox');
    await p.getByRole('button', { name: 'Filter' }).click();
    await p.waitForURL(/\/auth\/admin\/console\/sessions\?user=/);
    await expect.poll(() => p.locator('#sessions tbody tr').count(), { timeout: 10_000 }).toBe(1);
    await p.getByLabel('Device contains').fill('');
    await p.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => p.locator('#sessions tbody tr').count(), { timeout: 10_000 }).toBe(3);
    await shoot(p, 'console-sessions-filtered');

    // Select two (the Firefox and the Safari sign-ins), end them together.
    await p.getByLabel(/^Select the session of .* on Firefox on Linux$/).check();
    await p.getByLabel(/^Select the session of .* on Safari on iOS$/).check();
    await p.getByRole('button', { name: 'End the selected sessions' }).click();
    await expect(p.locator('h1').innerText()).resolves.toBe('End these 2 sessions?');
    await shoot(p, 'console-sessions-confirm');
    await p.getByRole('button', { name: 'End 2 sessions' }).click();
    await p.waitForURL(/\/auth\/admin\/console\/sessions\?done=ended$/);
    await expect(p.locator('#notice').innerText()).resolves.toBe('The sessions you selected have ended, with their tokens.');

    // The laptop's token is refused now (and that refusal is a security event).
    const refused = await new Client(walk.gw.url).fetch('/auth/me', { headers: { authorization: `Bearer ${laptop}` } });
    expect(refused.status).toBe(401);

    await p.locator('.console-nav').getByRole('link', { name: 'Audit log' }).click();
    await p.waitForURL(`${walk.gw.url}/auth/admin/console/audit`);
    await p.getByLabel('User (email or id)').fill(userEmail);
    await p.getByRole('button', { name: 'Filter' }).click();
    await p.waitForURL(/\/auth\/admin\/console\/audit\?user=/);
    await expect.poll(() => p.locator('#events tr[data-event="admin_sessions_ended"]').count(), { timeout: 10_000 }).toBe(1);
    await expect(p.locator('#events tr[data-outcome="security"] .tag').first().innerText()).resolves.toBe('security');
    await shoot(p, 'console-audit');

    await p.getByLabel('Outcome').selectOption('security');
    await p.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => p.locator('#events tbody tr').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    await p.emulateMedia({ colorScheme: 'dark' });
    await p.setViewportSize({ width: 375, height: 812 });
    await p.screenshot({ path: join(ARTIFACTS, 'console-audit-security-dark-375.png'), fullPage: true });
    await p.emulateMedia({ colorScheme: 'light' });
    await p.setViewportSize({ width: 1280, height: 900 });

    const [download] = await Promise.all([p.waitForEvent('download'), p.getByRole('link', { name: 'CSV' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^gatehouse-audit-.*\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8');
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,at,event,outcome,user_id,ip,user_agent,detail');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.slice(1).every((l) => l.split(',')[3] === 'security')).toBe(true);
    await noJs.close();
  });
});
