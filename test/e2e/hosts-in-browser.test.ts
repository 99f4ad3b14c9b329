/**
 * Single sign-on across hosts end to end (README "Hosts"): a real `wrangler dev` whose gateway
 * host is `localhost` and whose routes name two app hosts, `app.localhost` and `wiki.localhost`
 * (as `npm run dev` sets them up), both in front of the demo echo origin, and Chromium, which
 * resolves `*.localhost` to loopback and treats it as a secure context (so `__Host-` cookies
 * work over http there).
 *
 * One sign-in, on the gateway's page, serves both hosts (each gets its own cookie through the
 * gateway's /sso); signing out on one ends the session on the gateway and on the other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoOrigin } from '../../scripts/dev/echo-origin.mjs';
import { CHROMIUM, startGateway, type Gateway } from './harness';

const stamp = Date.now();
const email = `hosts-${stamp}@example.com`;
const PASSWORD = 'correct horse battery staple';

let gw: Gateway;
let echo: Awaited<ReturnType<typeof startEchoOrigin>>;
let context: BrowserContext;
let profileDir: string;
let page: Page;
let appUrl: string;
let wikiUrl: string;

beforeAll(async () => {
  echo = await startEchoOrigin({ port: 0 });
  const routes = [
    { host: 'app.localhost', path: '/', origin: echo.url, auth: 'required' },
    { host: 'wiki.localhost', path: '/', origin: echo.url, auth: 'required' },
  ];
  gw = await startGateway({ host: 'localhost', vars: { ROUTES: JSON.stringify(routes) } });
  appUrl = `http://app.localhost:${gw.port}`;
  wikiUrl = `http://wiki.localhost:${gw.port}`;
  const registered = await fetch(`${gw.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) });
  expect(registered.status, await registered.clone().text()).toBe(201);
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));
  // The gateway listens on 127.0.0.1 alone: every *.localhost name goes there.
  context = await chromium.launchPersistentContext(profileDir, { ...CHROMIUM, args: [...CHROMIUM.args, '--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1'] });
  page = await context.newPage();
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  await echo?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/** The cookies Chromium holds for a host, by name. */
async function cookiesOf(url: string): Promise<Map<string, string>> {
  return new Map((await context.cookies(url)).map((c) => [c.name, c.value]));
}

describe('two app hosts and the gateway in Chromium', () => {
  it('one sign-in on the gateway’s page serves both hosts, each with its own cookie of the same session', async () => {
    // The app host sends the browser to the gateway, which asks for a sign-in...
    await page.goto(`${appUrl}/notes?x=1`);
    await page.waitForURL((url) => url.host === `localhost:${gw.port}` && url.pathname === '/auth/login');
    await page.locator('#login-email').fill(email);
    await page.locator('#login-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    // ... and comes back to the page asked for, signed in there.
    await page.waitForURL(`${appUrl}/notes?x=1`);
    await expect(page.locator('body').innerText()).resolves.toContain(`Signed in as ${email}`);

    // The second host: straight through, no sign-in page.
    const seen: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) seen.push(frame.url());
    });
    await page.goto(`${wikiUrl}/`);
    await page.waitForURL(`${wikiUrl}/`);
    await expect(page.locator('body').innerText()).resolves.toContain(`Signed in as ${email}`);
    expect(seen.some((u) => new URL(u).pathname === '/auth/login'), seen.join('\n')).toBe(false);

    // Each host holds its own __Host- cookie; no host holds the gateway's refresh cookie.
    const app = await cookiesOf(appUrl);
    const wiki = await cookiesOf(wikiUrl);
    expect(app.get('__Host-gatehouse')).toBeDefined();
    expect(wiki.get('__Host-gatehouse')).toBeDefined();
    expect(app.get('__Host-gatehouse')).not.toBe(wiki.get('__Host-gatehouse'));
    const sid = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid;
    const gateway = await cookiesOf(gw.url);
    expect(sid(app.get('__Host-gatehouse')!)).toBe(sid(gateway.get('__Host-gatehouse')!));
    expect(sid(wiki.get('__Host-gatehouse')!)).toBe(sid(gateway.get('__Host-gatehouse')!));
  });

  it('signing out on one host ends the session on the gateway and on the other host', async () => {
    await page.goto(`${wikiUrl}/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${gw.url}/auth/login?done=signed_out`);
    await expect(page.locator('body').innerText()).resolves.toContain('You have been signed out.');
    expect((await cookiesOf(wikiUrl)).get('__Host-gatehouse')).toBeUndefined();

    // The other host still holds its cookie, but its session has ended: back to the sign-in page.
    expect((await cookiesOf(appUrl)).get('__Host-gatehouse')).toBeDefined();
    await page.goto(`${appUrl}/notes`);
    await page.waitForURL((url) => url.host === `localhost:${gw.port}` && url.pathname === '/auth/login');
    await expect(page.locator('body').innerText()).resolves.not.toContain(`Signed in as ${email}`);
    // And the gateway's own account page asks for a sign-in too.
    await page.goto(`${gw.url}/auth/account`);
    await page.waitForURL((url) => url.pathname === '/auth/login');
  });
});
