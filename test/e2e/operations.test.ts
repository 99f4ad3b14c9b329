/**
 * Operations against a real `wrangler dev`: the `[[ratelimits]]` binding answers 429 there,
 * the cron handler runs from the local scheduled trigger, every request leaves one JSON log
 * line without secrets, and the account page works in a real Chromium with JavaScript off.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, ROOT, startGateway, type Gateway } from './harness';
import { inOneWindow } from '../rate-window';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const PASSWORD = 'operations test passphrase 42';

let gw: Gateway;
let context: BrowserContext;
let profileDir: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  gw = await startGateway();
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-ops-'));
  context = await chromium.launchPersistentContext(profileDir, {
    ...CHROMIUM,
    javaScriptEnabled: false,
  });
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

describe('operations in wrangler dev', () => {
  it('the RATE_LIMITER binding limits refresh bursts per IP: the 101st answer is 429 with Retry-After', async () => {
    // The first count comes from the socket's address, as a browser's would; should it cross a
    // window boundary, the next comes from another client address (wrangler dev takes a
    // CF-Connecting-IP the request already carries, as Cloudflare's edge sets it).
    const { statuses, r } = await inOneWindow(async (attempt) => {
      const from: Record<string, string> = attempt === 0 ? {} : { 'cf-connecting-ip': `192.0.2.${attempt}` };
      const statuses: number[] = [];
      for (let i = 0; i < 101; i++) statuses.push((await post('/auth/refresh', { refresh_token: 'x'.repeat(43) }, from)).status);
      return { statuses, r: await post('/auth/refresh', { refresh_token: 'x'.repeat(43) }, from) };
    });
    expect(statuses.slice(0, 100).every((s) => s === 401)).toBe(true);
    expect(statuses[100]).toBe(429);
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('60');
    expect(await r.json()).toMatchObject({ error: 'rate_limited' });
  });

  it('the scheduled handler runs from the local cron trigger and reports what it deleted', async () => {
    const r = await fetch(`${gw.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent('17 * * * *')}`);
    expect(r.status).toBe(200);
    const deadline = Date.now() + 10_000;
    while (!gw.logs().includes('"event":"housekeeping"') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    const line = gw.logs().split('\n').find((l) => l.includes('"event":"housekeeping"'));
    expect(JSON.parse(line!.slice(line!.indexOf('{'), line!.lastIndexOf('}') + 1))).toMatchObject({ level: 'info', incomplete: false });
  });

  it('the account page works without JavaScript: sign in, see sessions, sign one out, sign out everywhere', async () => {
    const email = `ops-${Date.now()}@example.com`;
    const reg = await post('/auth/register', { email, password: PASSWORD });
    expect(reg.status).toBe(201);
    const api = (await reg.json()) as { access_token: string; refresh_token: string };

    const page = await context.newPage();
    // Not signed in: the account page sends the browser to sign in, and back after.
    await page.goto(`${gw.url}/auth/account`);
    expect(new URL(page.url()).pathname).toBe('/auth/login');
    await page.locator('#login-email').fill(email);
    await page.locator('#login-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw.url}/auth/account`);
    await expect(page.locator('#profile-email').innerText()).resolves.toContain(email);
    const rows = page.locator('#sessions tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
    await expect.poll(() => page.getByText('(this device)').count(), { timeout: 10_000 }).toBe(1);
    await expect(page.locator('#sessions tbody tr', { hasText: 'this device' }).innerText()).resolves.toContain('Headless Chrome on Linux');
    await page.screenshot({ path: join(ARTIFACTS, 'account-page.png'), fullPage: true });

    // Sign out the API session (the row that is not this device).
    await page.locator('#sessions tbody tr', { hasNotText: 'this device' }).getByRole('button', { name: /Sign out/ }).click();
    await page.waitForURL(`${gw.url}/auth/account?done=session_ended`);
    await expect(page.getByRole('status').innerText()).resolves.toContain('That session has been signed out.');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
    expect((await fetch(`${gw.url}/auth/me`, { headers: { authorization: `Bearer ${api.access_token}` } })).status).toBe(401);

    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.waitForURL(`${gw.url}/auth/login?done=signed_out_everywhere`);
    await expect(page.getByRole('status').innerText()).resolves.toBe('You have been signed out on every device.');
    const cookies = await context.cookies(gw.url);
    expect(cookies.map((c) => c.name)).not.toContain('__Host-gatehouse');
    await page.goto(`${gw.url}/auth/account`);
    expect(new URL(page.url()).pathname).toBe('/auth/login');

    // One JSON log line per request, and no token or password anywhere in the logs.
    const logs = gw.logs();
    expect(logs).toMatch(/"event":"request".*"route":"\/auth\/account"/);
    expect(logs).not.toContain(api.access_token);
    expect(logs).not.toContain(api.refresh_token);
    expect(logs).not.toContain(PASSWORD);
  });
});
