/**
 * The sign-in and create-account pages: separate views with their own URLs,
 * one primary button each, links between them carrying return_to, provider buttons, the
 * "Forgot password?" link only when offered, closed registration, and the account page's way
 * back to the app.
 */
import { describe, expect, it } from 'vitest';
import { LoginPage } from '../../../src/ui/login-page';
import { call, GOOD_PASSWORD, makeEnv, registerUser, setCookies } from '../support/helpers';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' };
const count = (html: string, re: RegExp) => html.match(new RegExp(re.source, 'g'))?.length ?? 0;
/** Primary buttons and primary button-links. */
const primaries = (html: string) => count(html, /class="button primary"/);

describe('GET /auth/login: the sign-in view', () => {
  it('has its title, one h1, one primary button, a link to create an account carrying return_to, and no sign-up form', async () => {
    const r = await call('/auth/login?return_to=%2Fapp%3Fx%3D1', { env: makeEnv({ APP_NAME: 'Acme Books' }) });
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('<title>Sign in · Acme Books</title>');
    expect(html).toContain('<span>Acme Books</span>');
    expect(count(html, /<h1>/)).toBe(1);
    expect(html).toContain('<h1>Sign in</h1>');
    expect(primaries(html)).toBe(1);
    expect(html).toMatch(/<button type="submit" class="button primary">Sign in<\/button>/);
    expect(html).toContain('<form method="post" action="/auth/login"');
    expect(html).not.toContain('action="/auth/register"');
    expect(html).toContain('<a href="/auth/register?return_to=%2Fapp%3Fx%3D1" id="to-register">Create an account</a>');
    expect(html).toContain('<input type="hidden" name="return_to" value="/app?x=1"/>');
    // The show-password toggle is in the markup but hidden: without JavaScript it stays a plain password field.
    expect(html).toMatch(/<input id="login-password" name="password" type="password" autocomplete="current-password"/);
    expect(html).toMatch(/<button type="button" class="secondary reveal" hidden="" data-reveal="login-password"/);
  });

  it('has no "Forgot password?" link while the feature is off (the route passes false)', async () => {
    const html = await (await call('/auth/login')).text();
    expect(html).not.toContain('Forgot password?');
    expect(html).not.toContain('/password/forgot');
  });

  it('an unsafe return_to is carried as / in every link', async () => {
    const html = await (await call('/auth/login?return_to=https%3A%2F%2Fevil.example%2F', { env: makeEnv({ GITHUB_CLIENT_ID: 'a', GITHUB_CLIENT_SECRET: 'b' }) })).text();
    expect(html).not.toContain('evil.example');
    expect(html).toContain('href="/auth/register?return_to=%2F"');
    expect(html).toContain('href="/auth/login/github?return_to=%2F"');
  });

  it('shows providers as buttons that carry return_to, then "or" and the password form', async () => {
    const html = await (await call('/auth/login?return_to=%2Fapp', { env: makeEnv({ GITHUB_CLIENT_ID: 'a', GITHUB_CLIENT_SECRET: 'b' }) })).text();
    expect(html).toContain('<a class="button secondary" href="/auth/login/github?return_to=%2Fapp" data-provider="github">Continue with GitHub</a>');
    expect(html.indexOf('data-provider="github"')).toBeLessThan(html.indexOf('class="divider"'));
    expect(html.indexOf('class="divider"')).toBeLessThan(html.indexOf('id="login-email"'));
    expect(primaries(html)).toBe(1);
  });
});

describe('GET /auth/register: the create-account view', () => {
  it('has its own title, h1, form and one primary button, and a link back to sign in carrying return_to', async () => {
    const r = await call('/auth/register?return_to=%2Fapp', { headers: NAV });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'nonce-/);
    const html = await r.text();
    expect(html).toContain('<title>Create account · Gatehouse</title>');
    expect(count(html, /<h1>/)).toBe(1);
    expect(html).toContain('<h1>Create account</h1>');
    expect(primaries(html)).toBe(1);
    expect(html).toMatch(/<button type="submit" class="button primary">Create account<\/button>/);
    expect(html).toContain('<form method="post" action="/auth/register"');
    expect(html).not.toContain('id="login-email"');
    expect(html).toContain('<input type="hidden" name="return_to" value="/app"/>');
    expect(html).toContain('<a href="/auth/login?return_to=%2Fapp" id="to-login">Sign in</a>');
    expect(html).toMatch(/<input id="register-email" name="email" type="email" autocomplete="email" required=""/);
    expect(html).toMatch(/<input id="register-password" name="password" type="password" autocomplete="new-password" required="" minlength="12" maxlength="256" aria-describedby="register-password-hint"/);
    expect(html).toContain('<p class="hint" id="register-password-hint">At least 12 characters. Long passphrases are welcome.</p>');
  });

  it('the form it shows creates the account and returns to return_to (303)', async () => {
    const form = { email: `page-${crypto.randomUUID()}@example.com`, password: GOOD_PASSWORD, return_to: '/app' };
    const r = await call('/auth/register', { form, headers: NAV });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/app');
    expect(setCookies(r).get('__Host-gatehouse')?.value).toBeTruthy();
  });

  it('closed registration: a clear 404 page with a way to sign in (not a 500), and no link to it from sign-in', async () => {
    const env = makeEnv({ REGISTRATION: 'closed' });
    const r = await call('/auth/register?return_to=%2Fapp', { env, headers: NAV });
    expect(r.status).toBe(404);
    const html = await r.text();
    expect(html).toContain('<h1>No sign-up here</h1>');
    expect(html).toContain('New accounts cannot be created here. If you already have an account, sign in.');
    expect(html).toContain('href="/auth/login?return_to=%2Fapp"');
    expect(html).not.toContain('action="/auth/register"');
    const login = await (await call('/auth/login', { env })).text();
    expect(login).not.toContain('/auth/register');
    expect(login).toContain('action="/auth/login"');
  });

  it('password sign-in disabled: the page points to the providers, and sign-in shows no password form', async () => {
    const env = makeEnv({ PASSWORD_LOGIN: 'disabled', GITHUB_CLIENT_ID: 'a', GITHUB_CLIENT_SECRET: 'b' });
    const r = await call('/auth/register', { env, headers: NAV });
    expect(r.status).toBe(404);
    expect(await r.text()).toContain('Accounts here are created by continuing with a sign-in provider on the sign-in page.');
    const login = await (await call('/auth/login', { env })).text();
    expect(login).not.toContain('<form');
    expect(login).not.toContain('/auth/register');
    expect(login).toContain('Continue with GitHub');
    expect(login).not.toContain('class="divider"');
  });

  it('a failed registration post with registration closed renders sign-in with the error (403), not the create-account view', async () => {
    const r = await call('/auth/register', { env: makeEnv({ REGISTRATION: 'closed' }), form: { email: 'x@example.com', password: GOOD_PASSWORD }, headers: NAV });
    expect(r.status).toBe(403);
    const html = await r.text();
    expect(html).toContain('<h1>Sign in</h1>');
    expect(html).toContain('Registration is closed on this gateway.');
    expect(html).not.toContain('id="register-email"');
  });
});

describe('"Forgot password?"', () => {
  const props = { prefix: '/auth', returnTo: '/app', providers: [], passwordLogin: true, registration: true, minLength: 12 };
  it('is a link to {prefix}/password/forgot next to the password label when the page is told the feature is on', () => {
    const on = String(LoginPage({ ...props, offers: { forgotPassword: true } }));
    expect(on).toMatch(/<div class="field-head"><label for="login-password">Password<\/label><a href="\/auth\/password\/forgot\?return_to=%2Fapp" id="forgot-password">Forgot password\?<\/a><\/div>/);
    expect(String(LoginPage({ ...props, offers: { forgotPassword: false } }))).not.toContain('Forgot password?');
    expect(String(LoginPage({ ...props, view: 'register', offers: { forgotPassword: true } }))).not.toContain('Forgot password?');
  });
});

describe('GET /auth/account: the way back to the app', () => {
  async function signedIn() {
    const user = await registerUser();
    const r = await call('/auth/login', { form: { email: user.user.email, password: GOOD_PASSWORD }, headers: NAV });
    const jar = setCookies(r);
    return { '__Host-gatehouse': jar.get('__Host-gatehouse')!.value };
  }

  it('links to return_to when it is safe, else to /', async () => {
    const cookies = await signedIn();
    const own = await (await call('/auth/account?return_to=%2Fdashboard', { cookies, headers: NAV })).text();
    expect(own).toMatch(/<a class="back" href="\/dashboard" id="back-to-app"><span aria-hidden="true">← <\/span>Back to Gatehouse<\/a>/);
    const plain = await (await call('/auth/account', { cookies, headers: NAV })).text();
    expect(plain).toContain('<a class="back" href="/" id="back-to-app">');
    const foreign = await (await call('/auth/account?return_to=https%3A%2F%2Fevil.example%2F', { cookies, headers: NAV })).text();
    expect(foreign).toContain('<a class="back" href="/" id="back-to-app">');
    expect(foreign).not.toContain('evil.example');
  });
});
