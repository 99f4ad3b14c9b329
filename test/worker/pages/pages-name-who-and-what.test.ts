/**
 * Pages that say who and what: "check your email" names the address and offers a new link, a
 * confirmed link says who is now signed in, the step-up page names the account and can be left,
 * recovery codes can be copied or downloaded and must be acknowledged, the 404 page does not
 * offer "Sign in" to someone signed in, and the sign-in card names the app (and the app host a
 * `return_to` leads to) with its logo.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, call, GOOD_PASSWORD, makeEnv, PUBLIC_URL, registerUser, setCookies, type TestEnv } from '../support/helpers';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';
import { ENCRYPTION_KEY, recoveryCodesFromPage, userWithTotp } from '../support/second-factor-helpers';
import { RecoveryCodesPage } from '../../../src/ui/second-factor-pages';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' };

/** Signs in with a form post as a browser would; returns the cookie jar. */
async function browserSignIn(email: string, env = makeEnv()) {
  const r = await call('/auth/login', { env, form: { email, password: GOOD_PASSWORD }, headers: NAV });
  expect(r.status).toBe(303);
  const jar = setCookies(r);
  return { '__Host-gatehouse': jar.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': jar.get('__Secure-gatehouse-refresh')!.value };
}

describe('the 404 page', () => {
  it('offers "Sign in" to a browser without a session', async () => {
    const r = await call('/auth/no-such-page', { headers: NAV });
    expect(r.status).toBe(404);
    const html = await r.text();
    expect(html).toContain('Page not found');
    expect(html).toContain('href="/auth/login"');
    expect(html).not.toContain('/auth/account');
  });

  it('offers the account page and the way back, never "Sign in", to someone signed in', async () => {
    const user = await registerUser();
    const cookies = await browserSignIn(user.user.email);
    const r = await call('/auth/no-such-page', { headers: NAV, cookies });
    expect(r.status).toBe(404);
    const html = await r.text();
    expect(html).toContain('Page not found');
    expect(html).toContain('<a class="button primary" href="/auth/account" data-action="next">Go to your account</a>');
    expect(html).toContain('id="back-to-app"');
    expect(html).not.toContain('/auth/login');
    expect(html).not.toMatch(/sign in/i);
  });
});

describe('the step-up page', () => {
  const e = proxyEnv(
    [
      { path: '/fresh', origin: 'service:APP', auth: 'required', max_auth_age: 300 },
      { path: '/open', origin: 'service:APP', auth: 'required' },
    ],
    { APP: recordingOrigin() },
    { APP_NAME: 'Acme Books' },
  );

  it('names the signed-in account and offers Cancel back to return_to', async () => {
    const user = await registerUser(undefined, undefined, e);
    const cookies = await browserSignIn(user.user.email, e);
    const r = await call(`/auth/step-up?return_to=${encodeURIComponent('/open/report')}`, { env: e, cookies, headers: NAV });
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('<title>Confirm it’s you · Acme Books</title>');
    expect(html).toContain('<h1>Confirm it’s you</h1>');
    expect(html).toContain(`Signed in as <strong>${user.user.email}</strong>`);
    expect(html).toContain('<a class="button secondary" href="/open/report" id="cancel">Cancel</a>');
  });

  it('cancels to the account page when return_to is the page that asked for the step-up', async () => {
    const user = await registerUser(undefined, undefined, e);
    const cookies = await browserSignIn(user.user.email, e);
    const html = await (await call(`/auth/step-up?return_to=${encodeURIComponent('/fresh/x')}`, { env: e, cookies, headers: NAV })).text();
    expect(html).toContain('<a class="button secondary" href="/auth/account" id="cancel">Cancel</a>');
  });
});

describe('"Check your email"', () => {
  const required = mailEnv({ EMAIL_VERIFICATION: 'required' });

  it('after registering names the address typed and offers to send the link again (the resend endpoint, that address, return_to)', async () => {
    const email = uniqueEmail('check');
    const r = await call('/auth/register', { env: required, form: { email, password: GOOD_PASSWORD, return_to: '/app' }, headers: { ...NAV, origin: PUBLIC_URL } });
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('<h1>Check your email</h1>');
    expect(html).toContain(`We sent a message to <strong>${email}</strong>`);
    const form = /<form method="post" action="\/auth\/email\/verify\/resend"[^>]*>(.*?)<\/form>/s.exec(html)?.[1];
    expect(form).toBeDefined();
    expect(form).toContain(`<input type="hidden" name="email" value="${email}"/>`);
    expect(form).toContain('<input type="hidden" name="return_to" value="/app"/>');
    expect(form).toContain('Send again');
    // The button works: it answers with the same page for that address.
    const again = await call('/auth/email/verify/resend', { env: required, form: { email, return_to: '/app' }, headers: { ...NAV, origin: PUBLIC_URL } });
    expect(again.status).toBe(200);
    expect(await again.text()).toContain(`If <strong>${email}</strong> is waiting to be confirmed, we sent a new link to it.`);
  });
});

describe('after confirming a verification link', () => {
  const required = mailEnv({ EMAIL_VERIFICATION: 'required', APP_NAME: 'Acme Books', ALLOWED_RETURN_ORIGINS: 'https://books.example.com' });

  /** Registers `email` with verification on and posts its link's form, as the confirm page does. */
  async function registerAndConfirm(env: TestEnv, email: string, returnTo: string) {
    expect((await call('/auth/register', { env, json: { email, password: GOOD_PASSWORD, return_to: returnTo } })).status).toBe(202);
    const mail = (await mailFor(email)).at(-1)!;
    const token = new URL(mail.links.find((l) => l.includes('/email/verify'))!).searchParams.get('token')!;
    return call('/auth/email/verify', { env, form: { token, password: GOOD_PASSWORD, return_to: returnTo }, headers: { ...NAV, origin: PUBLIC_URL } });
  }

  it('a page says who is signed in, with the session cookies set and "Continue to" the app', async () => {
    const email = uniqueEmail('confirmed');
    const r = await registerAndConfirm(required, email, '/library');
    expect(r.status).toBe(200);
    expect(setCookies(r).has('__Host-gatehouse')).toBe(true);
    const html = await r.text();
    expect(html).toContain('<h1>You are signed in</h1>');
    expect(html).toContain(`You are signed in to Acme Books as <strong>${email}</strong>`);
    expect(html).toContain('<a class="button primary" href="/library" data-action="next">Continue to Acme Books</a>');
  });

  it('names the host of another app that return_to leads to', async () => {
    const html = await (await registerAndConfirm(required, uniqueEmail('elsewhere'), 'https://books.example.com/shelf')).text();
    expect(html).toContain('<a class="button primary" href="https://books.example.com/shelf" data-action="next">Continue to books.example.com</a>');
  });

  it('a user who owes a second factor still goes to the second-factor step: no session, no page', async () => {
    const admin = uniqueEmail('confirm-admin');
    const e = mailEnv({ EMAIL_VERIFICATION: 'required', ADMIN_EMAILS: admin, MFA_REQUIRED_ROLES: 'admin', TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });
    const r = await registerAndConfirm(e, admin, '/library');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/mfa');
    expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  });
});

describe('the sign-in card', () => {
  const e = makeEnv({ APP_NAME: 'Acme Books', APP_LOGO_URL: 'https://cdn.example.com/logo.svg', ALLOWED_RETURN_ORIGINS: 'https://books.example.com' });

  it('says what the sign-in is for: the app, under the heading, with the logo', async () => {
    const html = await (await call('/auth/login?return_to=%2Flibrary', { env: e })).text();
    expect(html).toContain('<h1>Sign in</h1><p class="lede" id="destination">to continue to <strong>Acme Books</strong></p>');
    expect(html).toMatch(/<img src="https:\/\/cdn.example.com\/logo.svg" alt=""/);
  });

  it('names the app host a return_to leads to, on both views; an unsafe one is just the app', async () => {
    const rt = encodeURIComponent('https://books.example.com/shelf');
    for (const view of ['login', 'register']) {
      const html = await (await call(`/auth/${view}?return_to=${rt}`, { env: e })).text();
      expect(html).toContain('to continue to <strong>books.example.com</strong>');
    }
    const evil = await (await call(`/auth/login?return_to=${encodeURIComponent('https://evil.example/')}`, { env: e })).text();
    expect(evil).toContain('to continue to <strong>Acme Books</strong>');
    expect(evil).not.toContain('evil.example');
  });
});

describe('recovery codes', () => {
  const e = makeEnv({ TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY, APP_NAME: 'Acme Books' });

  it('can be copied (a nonce script shows the button) or downloaded as text, and going on needs "I have saved these codes"', async () => {
    const { jar } = await userWithTotp(e);
    const r = await call('/auth/account/recovery-codes', { env: e, cookies: jar, headers: NAV, form: {} });
    expect(r.status).toBe(200);
    const nonce = /script-src 'nonce-([^']+)'/.exec(r.headers.get('content-security-policy')!)![1];
    const html = await r.text();
    expect(html).toContain('<title>Your recovery codes · Acme Books</title>');
    const codes = recoveryCodesFromPage(html);
    expect(codes).toHaveLength(10);
    // Copy: hidden without JavaScript (the codes are plain text then), shown by a script under the page's nonce.
    expect(html).toContain('<button type="button" class="button secondary" hidden="" data-copy="recovery-codes">Copy codes</button>');
    for (const tag of html.match(/<script[^>]*>/g)!) expect(tag).toBe(`<script nonce="${nonce}">`);
    expect(html).toContain('navigator.clipboard.writeText');
    // Download: a data: URL with a file name, no request to the gateway.
    const download = /<a class="button secondary" id="codes-download" download="acme-books-recovery-codes.txt" href="([^"]+)">Download<\/a>/.exec(html)?.[1];
    expect(download).toBeDefined();
    const text = decodeURIComponent(download!.replace('data:text/plain;charset=utf-8,', ''));
    expect(text.startsWith('Acme Books recovery codes\n')).toBe(true);
    for (const code of codes) expect(text).toContain(`\n${code}`);
    // Going on: a GET form back to the account page that the browser submits only with the box ticked.
    const form = /<form method="get" action="\/auth\/account" id="codes-continue">(.*?)<\/form>/s.exec(html)?.[1];
    expect(form).toBeDefined();
    expect(form).toContain('<input type="checkbox" id="codes-saved" required=""/><label for="codes-saved">I have saved these codes somewhere safe</label>');
    expect(form).toContain('<button type="submit" class="button primary">Back to your account</button>');
    expect(html).not.toContain('<a class="button" href="/auth/account"');
  });

  it('the acknowledged "Continue" keeps the query of where it leads (hidden fields of the GET form)', () => {
    const html = RecoveryCodesPage({ intro: 'On.', codes: ['aaaa-bbbb'], continueHref: 'https://books.example.com/shelf?a=1&b=two%20words', continueLabel: 'Continue' }).toString();
    expect(html).toContain('<form method="get" action="https://books.example.com/shelf" id="codes-continue"><input type="hidden" name="a" value="1"/><input type="hidden" name="b" value="two words"/>');
  });
});

describe('the account page', () => {
  const e = mailEnv({ TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY, EMAIL_VERIFICATION: 'off' });

  /** The page's sections in order: id and markup. */
  function sections(html: string) {
    return [...html.matchAll(/<section class="([^"]+)" id="([^"]+)"[^>]*>(.*?)<\/section>/gs)].map((m) => ({ id: m[2]!, danger: m[1]!.includes('danger-zone'), html: m[3]! }));
  }

  it('is grouped in sections, each with at most one primary action, the danger zone last (sign out everywhere, delete)', async () => {
    const user = await registerUser(uniqueEmail('sections'), undefined, e);
    const cookies = await browserSignIn(user.user.email, e);
    const html = await (await call('/auth/account', { env: e, cookies, headers: NAV })).text();
    expect(html).toContain(`Signed in as <strong>${user.user.email}</strong>`);
    const found = sections(html);
    expect(found.map((s) => s.id)).toEqual(['profile', 'security', 'sessions-section', 'apps', 'danger-zone']);
    const primaries = (part: string) => part.match(/class="button primary"/g)?.length ?? 0;
    expect(primaries(html)).toBe(found.reduce((n, s) => n + primaries(s.html), 0)); // none outside a section
    for (const s of found) expect(primaries(s.html), s.id).toBeLessThanOrEqual(1);
    const [profile, security, sessions, apps, danger] = found;
    // Profile: the address and its one action, changing it.
    expect(profile!.html).toContain('action="/auth/account/email"');
    expect(primaries(profile!.html)).toBe(1);
    // Sign-in & security: password (its change the one primary action), passkeys, authenticator app, linked methods.
    for (const id of ['change-password', 'passkeys', 'second-factors', 'sign-in-methods']) expect(security!.html).toContain(`id="${id}"`);
    expect(security!.html).toMatch(/<button type="submit" class="button primary">Change password<\/button>/);
    expect(primaries(security!.html)).toBe(1);
    expect(sessions!.html).toContain('id="sessions"');
    expect(primaries(sessions!.html)).toBe(0);
    // Apps the user allowed (none yet), each with a Revoke button, never a primary one.
    expect(apps!.html).toContain('id="no-apps"');
    expect(primaries(apps!.html)).toBe(0);
    // The danger zone, last: both irreversible actions, as danger buttons, and nothing else has them.
    expect(danger!.danger).toBe(true);
    expect(danger!.html).toContain('<form method="post" action="/auth/account/logout-all">');
    expect(danger!.html).toContain('<form method="post" action="/auth/account/delete" aria-label="Delete account">');
    expect(danger!.html).toContain('<input id="delete-password" name="password"');
    expect(danger!.html.match(/class="button danger"/g)).toHaveLength(2);
    expect(primaries(danger!.html)).toBe(0);
    for (const s of [profile, security, sessions]) expect(s!.html).not.toMatch(/logout-all|account\/delete/);
  });

  it('a provider-only account (no password to change): setting up the authenticator app is the security section\'s one primary action', async () => {
    const user = await registerUser(uniqueEmail('no-password'), undefined, e);
    const cookies = await browserSignIn(user.user.email, e);
    await baseEnv.DB.prepare('UPDATE users SET password_hash = NULL WHERE id = ?').bind(user.user.id).run();
    const html = await (await call('/auth/account', { env: e, cookies, headers: NAV })).text();
    const security = sections(html).find((s) => s.id === 'security')!;
    expect(security.html).toContain('<a class="button primary" href="/auth/account/totp">');
    expect(security.html.match(/class="button primary"/g)).toHaveLength(1);
  });
});
