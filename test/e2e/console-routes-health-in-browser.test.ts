/**
 * The console's Routes and policy and Health areas in a real Chromium against a real
 * `wrangler dev`, set up as console-in-browser.test.ts does (an admin in ADMIN_EMAILS signs in
 * through OpenID Connect and sets up an authenticator app). Then, with JavaScript turned off, the
 * admin reads the routes in words, asks "who can reach this?" for a user and a URL, and opens
 * Health with its sign-in chart. Screenshots at 1280 and 375 px (and dark) go to test-artifacts/.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminWithoutJavaScript, ARTIFACTS, consoleWalk, PROVIDER_NAME, shoot } from './console-admin';
import { Client } from './harness';

const stamp = Date.now().toString(36);
const adminEmail = `console-rh-admin-${stamp}@example.com`;
const targetEmail = `console-rh-target-${stamp}@example.com`;
const password = 'an e2e passphrase that is long';

/** Routes never reached here (nothing is proxied): only read and explained. */
const ROUTES = [
  { path: '/ops', origin: 'https://ops.internal.example', auth: 'required', allow: { roles: ['ops'] } },
  {
    path: '/reports',
    origin: 'https://reports.internal.example/base',
    auth: 'required',
    logout_notify: 'https://reports.internal.example/logout',
    policy: { allow: [{ domain: ['example.com'], method: ['GET'] }, { groups: ['finance'] }], deny: [{ country: ['KP'] }] },
  },
  { path: '/secure', origin: 'https://secure.internal.example', auth: 'required', require: ['mfa'], max_auth_age: 3600 },
  { path: '/status', origin: 'https://status.internal.example', auth: 'public' },
];


const walk = consoleWalk(adminEmail, { ROUTES: JSON.stringify(ROUTES) });




describe('Routes and policy, and Health, in Chromium', () => {
  it('an admin reads the routes in words, asks who can reach a URL, and reads Health with its chart, without JavaScript', async () => {
    const client = new Client(walk.gw.url);
    expect((await client.fetch('/auth/register', { method: 'POST', json: { email: targetEmail, password } })).status).toBe(201);
    // A refused sign-in, for the chart.
    expect((await new Client(walk.gw.url).fetch('/auth/login', { method: 'POST', json: { email: targetEmail, password: 'not the passphrase at all' } })).status).toBe(401);

    const noJs = await adminWithoutJavaScript(walk.browser, walk.gw, PROVIDER_NAME);
    const p = await noJs.newPage();
    await p.goto(`${walk.gw.url}/auth/admin`);
    await p.locator('.console-nav').getByRole('link', { name: 'Routes and policy' }).click();
    await p.waitForURL(`${walk.gw.url}/auth/admin/console/routes`);
    await expect(p.locator('h1').innerText()).resolves.toBe('Routes and policy');
    await expect.poll(() => p.locator('section.route').count(), { timeout: 10_000 }).toBe(ROUTES.length);
    await expect(p.locator('[data-path="/ops"] [data-rule="allow.roles"]').innerText()).resolves.toContain('Admits someone who holds the role “ops”.');
    await shoot(p, 'console-routes');

    // Who can reach /ops/deploy? The target holds no role: refused, no rule admits them.
    await p.getByLabel('User (email address or id)').fill(targetEmail);
    await p.getByLabel('URL (or a path on the gateway’s host)').fill('/ops/deploy');
    await p.getByRole('button', { name: 'Explain' }).click();
    await p.waitForURL(/\/auth\/admin\/console\/routes\/explain\?/);
    await expect(p.locator('#answer').getAttribute('data-decision')).resolves.toBe('deny');
    await expect(p.locator('#headline').innerText()).resolves.toBe('Refused: no rule admits them.');
    await shoot(p, 'console-routes-explain');
    // An unknown user: the form again, with the message.
    await p.getByLabel('User (email address or id)').fill(`nobody-${stamp}@example.com`);
    await p.getByRole('button', { name: 'Explain' }).click();
    await expect(p.locator('#explain-error').innerText()).resolves.toBe(`No user has the email address or id “nobody-${stamp}@example.com”.`);

    await p.locator('.console-nav').getByRole('link', { name: 'Health' }).click();
    await p.waitForURL(`${walk.gw.url}/auth/admin/console/health`);
    await expect(p.locator('h1').innerText()).resolves.toBe('Health');
    await expect(p.locator('[data-probe="KV (REVOKED)"]').getAttribute('data-ok')).resolves.toBe('yes');
    await expect(p.locator('[data-probe="Durable Objects (USER_SESSIONS)"]').getAttribute('data-ok')).resolves.toBe('yes');
    await expect.poll(() => p.locator('[data-problem="development"]').count(), { timeout: 10_000 }).toBe(1);
    const bars = await p.locator('#sign-in-chart rect.ok[data-count], #sign-in-chart rect.refused[data-count]').evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-count'))));
    expect(bars.length).toBe(48);
    expect(bars.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
    const chart = await p.locator('#sign-in-chart').boundingBox();
    expect(chart!.width).toBeGreaterThan(600);
    await shoot(p, 'console-health');
    await p.setViewportSize({ width: 375, height: 812 });
    expect((await p.locator('#sign-in-chart').boundingBox())!.width).toBeLessThanOrEqual(375);
    // The numbers open without script (details/summary), and the chart close up.
    await p.getByText('The numbers, hour by hour').click();
    await expect.poll(() => p.locator('#sign-in-table tbody tr').count(), { timeout: 10_000 }).toBe(24);
    await p.locator('#sign-ins').screenshot({ path: join(ARTIFACTS, 'console-health-chart-375.png') });
    await p.emulateMedia({ colorScheme: 'dark' });
    await p.locator('#sign-ins').screenshot({ path: join(ARTIFACTS, 'console-health-chart-dark-375.png') });
    await p.screenshot({ path: join(ARTIFACTS, 'console-health-dark-375.png'), fullPage: true });
    await p.setViewportSize({ width: 1280, height: 900 });
    await p.screenshot({ path: join(ARTIFACTS, 'console-health-dark.png'), fullPage: true });
    await noJs.close();
  });
});
