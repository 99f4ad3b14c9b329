/**
 * Every page of the gateway, looked at in a real Chromium through a real `wrangler dev`: light
 * and dark scheme, phone (375 px) and desktop (1280 px). Screenshots go to test-artifacts/
 * (git-ignored) for a person to look at; what can be asserted without pixels is asserted:
 * no horizontal overflow on a phone, WCAG AA contrast of body and primary-button text as the
 * browser computes it, a label for every input, one h1, no CSP violation, the show-password
 * toggle, and a sign-in that works with JavaScript off. Pages that answer a form post (check
 * your email, signed in after a confirmed link, recovery codes) are reached as a person would.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpCatcher, type SmtpCatcher } from '../support/smtp-catcher';
import { CHROMIUM, Client, ROOT, startGateway, type Gateway } from './harness';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const PASSWORD = 'pages look test passphrase 42';
const email = `pages-${Date.now()}@example.com`;

let gw: Gateway;
let browser: Browser;
let catcher: SmtpCatcher;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  catcher = await startSmtpCatcher();
  gw = await startGateway({
    vars: {
      // Mail on, verification optional: registration still signs in, and the mailed pages exist.
      SMTP_URL: catcher.smtpUrl,
      EMAIL_VERIFICATION: 'optional',
      TOKEN_ENCRYPTION_KEY: 'pages-look-token-encryption-key-0123456789',
      APP_NAME: 'Acme Books',
      APP_ACCENT: '#0f766e',
      // Provider buttons on the page; nobody clicks them, so the issuer is never asked.
      GITHUB_CLIENT_ID: 'pages-look',
      GITHUB_CLIENT_SECRET: 'pages-look',
      OIDC_ISSUER: 'https://sso.example.invalid',
      OIDC_CLIENT_ID: 'pages-look',
      OIDC_NAME: 'Acme SSO',
    },
  });
  const reg = await new Client(gw.url).fetch('/auth/register', { method: 'POST', json: { email, password: PASSWORD } });
  expect(reg.status).toBe(201);
  browser = await chromium.launch({ ...CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await catcher?.stop();
});

interface Facts {
  overflow: number;
  h1: number;
  unlabelled: string[];
  bodyContrast: number;
  primaryContrast: number | null;
  /** Primary buttons in the page, or in its busiest section where it has sections (the account page). */
  primaries: number;
}

/** Measured in the page: WCAG contrast from computed colours, the first opaque background up the tree. */
function pageFacts(): Facts {
  const rgb = (s: string) => (s.match(/[\d.]+/g) ?? []).map(Number);
  const lum = (c: number[]) => {
    const ch = (v: number) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * ch(c[0]!) + 0.7152 * ch(c[1]!) + 0.0722 * ch(c[2]!);
  };
  const ratio = (a: number[], b: number[]) => {
    const [x, y] = [lum(a), lum(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const background = (el: Element | null): number[] => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
  };
  const textContrast = (el: Element) => ratio(rgb(getComputedStyle(el).color).slice(0, 3), background(el));
  // Body text: every paragraph, cell and label that holds text directly, at its weakest.
  const texts = [...document.querySelectorAll('h1, p, td, th, label, li, span, a:not(.button)')].filter((e) => e.checkVisibility() && e.textContent!.trim());
  const primary = document.querySelector('.button.primary');
  const inputs = [...document.querySelectorAll('input:not([type=hidden])')] as HTMLInputElement[];
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    h1: document.querySelectorAll('h1').length,
    unlabelled: inputs.filter((i) => i.labels?.length === 0 && !i.getAttribute('aria-label')).map((i) => i.id || i.name),
    bodyContrast: Math.min(...texts.map(textContrast)),
    primaryContrast: primary ? textContrast(primary) : null,
    primaries: Math.max(...[...document.querySelectorAll('main section, main')].map((part) => (part.tagName === 'MAIN' && part.querySelector('section') ? 0 : part.querySelectorAll('.button.primary').length))),
  };
}

/** An account of its own (a new address each time), registered as an API client would; its address. */
async function newAccount(label: string): Promise<string> {
  const address = `pages-${label}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const reg = await new Client(gw.url).fetch('/auth/register', { method: 'POST', json: { email: address, password: PASSWORD } });
  expect(reg.status).toBe(201);
  return address;
}

/**
 * Pages that are the answer to a form post, driven the way a person gets there: `post` (posted
 * from `path`, a page of the gateway) or `flow` (clicked through, from a fresh account).
 */
const FLOWS: Record<string, (page: Page) => Promise<void>> = {
  // Confirming the mailed link, with the password: the page that says who is now signed in.
  'signed-in': async (page) => {
    const address = await newAccount('confirm');
    const mail = await catcher.waitForMail(address);
    await page.goto(mail.links.find((l) => l.includes('/auth/email/verify?token='))!);
    await page.locator('#confirm-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Confirm email' }).click();
    await page.getByRole('heading', { name: 'You are signed in' }).waitFor();
  },
  // Turning on an authenticator app: the recovery codes, shown once.
  'recovery-codes': async (page) => {
    await signIn(page, '/auth/account', await newAccount('codes'));
    await page.goto(`${gw.url}/auth/account/totp`);
    const secret = (await page.locator('#totp-secret').innerText()).replaceAll(' ', '');
    await page.fill('#totp-code', new TOTP({ secret: Secret.fromBase32(secret) }).generate());
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.locator('#recovery-codes').waitFor();
  },
};

const PAGES: { name: string; path: string; signedIn?: boolean; primary: boolean; post?: { action: string; fields: Record<string, string> } }[] = [
  { name: 'sign-in', path: '/auth/login?return_to=%2Fauth%2Fme', primary: true },
  { name: 'sign-in-notice', path: '/auth/login?done=signed_out', primary: true },
  { name: 'create-account', path: '/auth/register?return_to=%2Fauth%2Fme', primary: true },
  { name: 'not-found', path: '/auth/no-such-page', primary: true },
  { name: 'not-found-signed-in', path: '/auth/no-such-page', signedIn: true, primary: true },
  { name: 'oauth-error', path: '/auth/login/nope', primary: true },
  { name: 'account', path: '/auth/account', signedIn: true, primary: true },
  { name: 'step-up', path: '/auth/step-up?return_to=%2Fauth%2Fme', signedIn: true, primary: true },
  { name: 'check-email', path: '/auth/login', primary: false, post: { action: '/auth/email/verify/resend', fields: { email: 'someone-else@example.com' } } },
  // Last: their flows leave the browser signed in as another account.
  { name: 'signed-in', path: '/auth/login', primary: true },
  { name: 'recovery-codes', path: '/auth/login', primary: true },
];

async function signIn(page: Page, returnTo = '/auth/account', as = email) {
  await page.goto(`${gw.url}/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  await page.locator('#login-email').fill(as);
  await page.locator('#login-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(`${gw.url}${returnTo}`);
}

describe.each([
  ['light', 375],
  ['dark', 375],
  ['light', 1280],
  ['dark', 1280],
] as const)('%s scheme at %i px', (scheme, width) => {
  let context: BrowserContext;
  const violations: string[] = [];

  beforeAll(async () => {
    context = await browser.newContext({ colorScheme: scheme, viewport: { width, height: 800 } });
    context.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text());
    });
  });
  afterAll(async () => {
    await context?.close();
  });

  it.each(PAGES)('$name: fits, reads at 4.5:1, labels every input, one h1', async ({ name, path, signedIn, primary, post }) => {
    const page = await context.newPage();
    if (signedIn) await signIn(page);
    const r = await page.goto(`${gw.url}${path}`);
    expect(r?.headers()['content-type']).toMatch(/^text\/html/);
    if (post) {
      // As the page's own form would: a same-origin POST, and the page it answers with.
      const answered = page.waitForNavigation();
      await page.evaluate(({ action, fields }) => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = action;
        for (const [k, v] of Object.entries(fields)) form.append(Object.assign(document.createElement('input'), { type: 'hidden', name: k, value: v }));
        document.body.append(form);
        form.submit();
      }, post);
      expect((await answered)?.headers()['content-type']).toMatch(/^text\/html/);
    }
    await FLOWS[name]?.(page);
    await page.screenshot({ path: join(ARTIFACTS, `pages-${name}-${scheme}-${width}.png`), fullPage: true });
    const facts = await page.evaluate(pageFacts);
    expect(facts.overflow, 'horizontal overflow (px)').toBeLessThanOrEqual(0);
    expect(facts.h1).toBe(1);
    expect(facts.unlabelled).toEqual([]);
    expect(facts.bodyContrast).toBeGreaterThanOrEqual(4.5);
    expect(facts.primaries).toBeLessThanOrEqual(1);
    if (primary) {
      expect(facts.primaries).toBe(1);
      expect(facts.primaryContrast).toBeGreaterThanOrEqual(4.5);
    }
    // The scheme really switched: the page background follows it.
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe(scheme === 'dark' ? 'rgb(18, 21, 27)' : 'rgb(243, 244, 247)');
    expect(violations).toEqual([]);
    await page.close();
  });
});

describe('the show-password toggle', () => {
  it('with JavaScript: the nonce script reveals the toggle, which switches the field and masks it again on submit', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${gw.url}/auth/login?return_to=%2Fauth%2Fme`);
    const toggle = page.getByRole('button', { name: 'Show password' });
    await toggle.waitFor({ state: 'visible' });
    const input = page.locator('#login-password');
    await input.fill(PASSWORD);
    await toggle.click();
    await expect(input.getAttribute('type')).resolves.toBe('text');
    await expect(toggle.getAttribute('aria-pressed')).resolves.toBe('true');
    await page.screenshot({ path: join(ARTIFACTS, 'pages-sign-in-password-shown.png') });
    await toggle.click();
    await expect(input.getAttribute('type')).resolves.toBe('password');
    await toggle.click();
    await page.locator('#login-email').fill(email);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${gw.url}/auth/me`);
    await context.close();
  });

  it('without JavaScript: no toggle, a plain password field, and the sign-in form works', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${gw.url}/auth/login?return_to=%2Fauth%2Fme`);
    await expect(page.locator('button[data-reveal]').isVisible()).resolves.toBe(false);
    await expect(page.locator('#login-password').getAttribute('type')).resolves.toBe('password');
    await page.screenshot({ path: join(ARTIFACTS, 'pages-sign-in-no-js.png') });
    await signIn(page, '/auth/me');
    const me = JSON.parse((await page.locator('body').innerText()).trim()) as { user: { email: string } };
    expect(me.user.email).toBe(email);
    // And from the account page, the way back to the app.
    await page.goto(`${gw.url}/auth/account?return_to=%2Fauth%2Fme`);
    await page.getByRole('link', { name: 'Back to Acme Books' }).click();
    await page.waitForURL(`${gw.url}/auth/me`);
    await context.close();
  });
});

describe('recovery codes', () => {
  it('without JavaScript: plain text with a download link, and going on needs the box ticked', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await FLOWS['recovery-codes']!(page);
    await expect(page.getByRole('button', { name: 'Copy codes' }).isVisible()).resolves.toBe(false);
    await page.locator('#codes-download').waitFor({ state: 'visible' });
    const back = page.getByRole('button', { name: 'Back to your account' });
    await back.click();
    await expect.poll(() => page.locator('#recovery-codes li').count(), { timeout: 10_000 }).toBe(10); // the browser refused: still here
    await page.getByLabel('I have saved these codes somewhere safe').check();
    await back.click();
    // A GET form without named fields: the address gains an empty query.
    await page.waitForURL(/\/auth\/account\??$/);
    await page.getByRole('heading', { name: 'Your account' }).waitFor({ state: 'visible' });
    await context.close();
  });
});
