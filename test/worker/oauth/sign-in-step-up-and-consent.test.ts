/**
 * What the authorization request asks of the browser before a code: a fresh sign-in
 * (`prompt=login`, `max_age`), a stronger one (`acr_values`), through the gateway's step-up and
 * back; and the user's consent, asked on a page of ours, remembered per app, skipped for
 * first-party apps and for what was allowed before, refused without a page for `prompt=none`.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { call, GOOD_PASSWORD, makeEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { agedJar, NAV, updateJar, userWithTotp, ENCRYPTION_KEY, type Jar } from '../support/second-factor-helpers';
import { sessionRow, sessionRows } from '../support/user-sessions-store';
import { AUTH_AFTER_TTL_S } from '../../../src/auth/oauth-authorize';
import { authorizeUrl, expectCode, expectErrorRedirect, locationOf, navigate, signedInBrowser } from './authorize-support';

const e = makeEnv({ TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });

/** Steps the browser's session up with its password, from the step-up page `r` sent it to; returns where it goes back to. */
async function stepUpWithPassword(r: Response, jar: Jar): Promise<string> {
  expect(r.status).toBe(303);
  const stepUp = locationOf(r);
  expect(stepUp.pathname).toBe('/auth/step-up');
  const back = stepUp.searchParams.get('return_to')!;
  const done = await call('/auth/step-up', { env: e, cookies: jar, headers: NAV, form: { password: GOOD_PASSWORD, return_to: back } });
  expect(done.status, await done.clone().text()).toBe(303);
  updateJar(jar, done);
  expect(done.headers.get('location')).toBe(back);
  return back;
}

const userIdOf = (jar: Jar) => decodeJwt(jar['__Host-gatehouse']!).sub as string;
const authTimeOf = (jar: Jar) => decodeJwt(jar['__Host-gatehouse']!).auth_time as number;

async function codeRow(code: string) {
  const [userId, secret] = code.split('.') as [string, string];
  const { sha256 } = await import('../../../src/util/random');
  return sessionRow<{ auth_time: number; amr: string; scope: string }>('SELECT auth_time, amr, scope FROM oauth_codes WHERE hash = ?', [await sha256(secret)], userId);
}

describe('a fresh sign-in: prompt=login and max_age', () => {
  it('prompt=login sends a signed-in browser to step up; back, the code carries the new sign-in time', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar: fresh } = await signedInBrowser(e);
    const jar = await agedJar(e, fresh, 120);
    const before = authTimeOf(jar);
    const r = await navigate(e, authorizeUrl(client, { prompt: 'login' }), jar);
    const back = await stepUpWithPassword(r, jar);
    expect(back).not.toContain('prompt=login');
    expect(back).toMatch(/auth_after=\d+/);
    const code = expectCode(await navigate(e, back, jar), client.redirectUris[0]!);
    expect((await codeRow(code))!.auth_time).toBeGreaterThan(before);
  });

  it('prompt=login without a session: to sign in, and back with auth_after', async () => {
    const { client } = await seedClient({ firstParty: true });
    const r = await navigate(e, authorizeUrl(client, { prompt: 'login' }));
    expect(r.status).toBe(303);
    const login = locationOf(r);
    expect(login.pathname).toBe('/auth/login');
    expect(login.searchParams.get('return_to')).toMatch(/auth_after=\d+/);
    expect(login.searchParams.get('return_to')).not.toContain('prompt=login');
  });

  it('an auth_after the session does not meet (coming back without stepping up) is asked again', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    const later = Math.floor(Date.now() / 1000) + 30;
    const r = await navigate(e, authorizeUrl(client, { auth_after: String(later) }), jar);
    expect(locationOf(r).pathname).toBe('/auth/step-up');
  });

  it('max_age: a sign-in older than it steps up (then a code); within it, a code at once; with prompt=none, login_required', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar: fresh } = await signedInBrowser(e);
    expectCode(await navigate(e, authorizeUrl(client, { max_age: '60' }), fresh), client.redirectUris[0]!);
    const jar = await agedJar(e, fresh, 120);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { max_age: '60', prompt: 'none' }), jar), client.redirectUris[0]!, 'login_required');
    const back = await stepUpWithPassword(await navigate(e, authorizeUrl(client, { max_age: '60' }), jar), jar);
    expectCode(await navigate(e, back, jar), client.redirectUris[0]!);
  });

  it('max_age=0 does not loop: once stepped up, the code is given', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar: fresh } = await signedInBrowser(e);
    const jar = await agedJar(e, fresh, 5);
    const back = await stepUpWithPassword(await navigate(e, authorizeUrl(client, { max_age: '0' }), jar), jar);
    expectCode(await navigate(e, back, jar), client.redirectUris[0]!);
  });
});

describe('auth_after: only one this server made for the request, recently', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('one written into the URL does not stand for a fresh sign-in: prompt=login, max_age and acr_values still step up', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar: fresh } = await signedInBrowser(e);
    const jar = await agedJar(e, fresh, 120);
    const extras: Record<string, string>[] = [{ prompt: 'login' }, { max_age: '60' }, { acr_values: 'passkey' }, {}];
    for (const extra of extras) {
      for (const forged of ['0', String(authTimeOf(jar)), `${authTimeOf(jar)}.${'A'.repeat(43)}`]) {
        const r = await navigate(e, authorizeUrl(client, { ...extra, auth_after: forged }), jar);
        expect(r.status, `${JSON.stringify(extra)} auth_after=${forged}`).toBe(303);
        expect(locationOf(r).pathname, `${JSON.stringify(extra)} auth_after=${forged}`).toBe('/auth/step-up');
      }
    }
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { max_age: '60', prompt: 'none', auth_after: '0' }), jar), client.redirectUris[0]!, 'login_required');
  });

  it('one made for another request does not carry over to this one', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar: fresh } = await signedInBrowser(e);
    const jar = await agedJar(e, fresh, 120);
    const back = await stepUpWithPassword(await navigate(e, authorizeUrl(client, { prompt: 'login' }), jar), jar);
    const made = new URL(back, 'https://x').searchParams.get('auth_after')!;
    const other = await navigate(e, authorizeUrl(client, { max_age: '0', state: 'another-state', auth_after: made }), jar);
    expect(locationOf(other).pathname).toBe('/auth/step-up');
  });

  it('one older than the way back may take is asked again', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar: fresh } = await signedInBrowser(e);
    const jar = await agedJar(e, fresh, 120);
    const back = await stepUpWithPassword(await navigate(e, authorizeUrl(client, { prompt: 'login' }), jar), jar);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + (AUTH_AFTER_TTL_S + 5) * 1000);
    const refreshed = await call('/auth/refresh', { env: e, cookies: jar, method: 'POST' });
    expect(refreshed.status).toBe(200);
    updateJar(jar, refreshed);
    expect(locationOf(await navigate(e, back, jar)).pathname).toBe('/auth/step-up');
  });
});

describe('acr_values', () => {
  it('mfa asked of a session without a second factor goes to step-up once; back, the code is given (acr_values are voluntary)', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    const back = await stepUpWithPassword(await navigate(e, authorizeUrl(client, { acr_values: 'mfa' }), jar), jar);
    expectCode(await navigate(e, back, jar), client.redirectUris[0]!);
  });

  it('mfa is met by a session with a second factor, at once; passkey is not, and steps up', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await userWithTotp(e);
    expect(decodeJwt(jar['__Host-gatehouse']!).amr).toContain('mfa');
    const code = expectCode(await navigate(e, authorizeUrl(client, { acr_values: 'mfa' }), jar), client.redirectUris[0]!);
    expect(JSON.parse((await codeRow(code))!.amr)).toContain('mfa');
    expect(locationOf(await navigate(e, authorizeUrl(client, { acr_values: 'passkey' }), jar)).pathname).toBe('/auth/step-up');
  });

  it('unknown acr values are ignored; with prompt=none an unmet one is not insisted on', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    expectCode(await navigate(e, authorizeUrl(client, { acr_values: 'urn:gold loa-3' }), jar), client.redirectUris[0]!);
    expectCode(await navigate(e, authorizeUrl(client, { acr_values: 'mfa', prompt: 'none' }), jar), client.redirectUris[0]!);
  });
});

/** The consent page's form fields, read from its HTML. */
function consentForm(html: string): { request: string; consent_token: string } {
  const field = (name: string) => {
    const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
    expect(m, `the page has ${name}`).not.toBeNull();
    return m![1]!.replaceAll('&amp;', '&').replaceAll('&#38;', '&').replaceAll('&quot;', '"').replaceAll('&#34;', '"').replaceAll('&#39;', "'");
  };
  return { request: field('request'), consent_token: field('consent_token') };
}

async function consentPage(url: string, jar: Jar) {
  const r = await navigate(e, url, jar);
  expect(r.status, r.headers.get('location') ?? '').toBe(200);
  return { response: r, html: await r.text() };
}

const answer = (jar: Jar, form: Record<string, string>, headers: Record<string, string> = {}) => call('/auth/authorize', { env: e, cookies: jar, headers: { ...NAV, ...headers }, form });

describe('consent', () => {
  it('the page names the app, what it asks in words, the resource and the account; its CSP lets the answer go to the app', async () => {
    const { client } = await seedClient({ name: 'Readwise Notes', allowedAudiences: ['https://api.example.org'] });
    const { jar, email } = await signedInBrowser(e);
    const { response, html } = await consentPage(authorizeUrl(client, { scope: 'openid email offline_access', resource: 'https://api.example.org' }), jar);
    expect(html).toContain('Readwise Notes');
    expect(html).toContain(email);
    expect(html).toContain('See your email address');
    expect(html).toContain('Stay connected while you are away');
    expect(html).toContain('https://api.example.org');
    expect(html).toMatch(/value="allow"/);
    expect(html).toMatch(/value="deny"/);
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toMatch(/form-action 'self'[^;]* https:\/\/app\.example\.org/);
    expect(csp).toMatch(/script-src 'nonce-/);
  });

  it('an app’s name and a scope it may ask for are shown as text, never as markup', async () => {
    const { client } = await seedClient({ name: '<img src=x onerror=alert(1)>Evil', allowedScopes: ['openid', '<b>x</b>'] });
    const { jar } = await signedInBrowser(e);
    const { html } = await consentPage(authorizeUrl(client, { scope: 'openid <b>x</b>' }), jar);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;Evil');
  });

  it('Allow sends a code and remembers the scopes; the same or fewer are not asked again, more are, and prompt=consent always asks', async () => {
    const { client } = await seedClient();
    const uri = client.redirectUris[0]!;
    const { jar } = await signedInBrowser(e);
    const { html } = await consentPage(authorizeUrl(client, { scope: 'openid email' }), jar);
    expectCode(await answer(jar, { ...consentForm(html), decision: 'allow' }), uri);
    const row = await sessionRow<{ scope: string }>('SELECT scope FROM oauth_consents WHERE client_id = ?', [client.id], userIdOf(jar));
    expect(row!.scope).toBe('email openid');
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid email' }), jar), uri);
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid' }), jar), uri);
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid', prompt: 'none' }), jar), uri);
    await consentPage(authorizeUrl(client, { scope: 'openid email profile' }), jar);
    await consentPage(authorizeUrl(client, { scope: 'openid', prompt: 'consent' }), jar);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM auth_events WHERE event = 'oauth_consent_granted' AND user_id = ?").bind(userIdOf(jar)).first('n')).toBe(1);
  });

  it('a remembered consent covers the resources allowed with it: another resource asks again, prompt=none gets consent_required', async () => {
    const { client } = await seedClient({ allowedAudiences: ['https://notes.example.org', 'https://payroll.example.org'] });
    const uri = client.redirectUris[0]!;
    const { jar } = await signedInBrowser(e);
    const { html } = await consentPage(authorizeUrl(client, { scope: 'openid', resource: 'https://notes.example.org' }), jar);
    expectCode(await answer(jar, { ...consentForm(html), decision: 'allow' }), uri);
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid', resource: 'https://notes.example.org' }), jar), uri);
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid' }), jar), uri);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { scope: 'openid', resource: 'https://payroll.example.org', prompt: 'none' }), jar), uri, 'consent_required');
    const again = await consentPage(authorizeUrl(client, { scope: 'openid', resource: 'https://payroll.example.org' }), jar);
    expect(again.html).toContain('https://payroll.example.org');
    expectCode(await answer(jar, { ...consentForm(again.html), decision: 'allow' }), uri);
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid', resource: 'https://notes.example.org', prompt: 'none' }), jar), uri);
    expectCode(await navigate(e, authorizeUrl(client, { scope: 'openid', resource: 'https://payroll.example.org', prompt: 'none' }), jar), uri);
  });

  it('Deny: access_denied to the app, no code, nothing remembered', async () => {
    const { client } = await seedClient();
    const { jar } = await signedInBrowser(e);
    const { html } = await consentPage(authorizeUrl(client), jar);
    expectErrorRedirect(await answer(jar, { ...consentForm(html), decision: 'deny' }), client.redirectUris[0]!, 'access_denied');
    expect(await sessionRows('SELECT * FROM oauth_consents', [], userIdOf(jar))).toHaveLength(0);
    expect(await sessionRows('SELECT * FROM oauth_codes', [], userIdOf(jar))).toHaveLength(0);
  });

  it('prompt=none when consent is needed: consent_required, no page', async () => {
    const { client } = await seedClient();
    const { jar } = await signedInBrowser(e);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { prompt: 'none' }), jar), client.redirectUris[0]!, 'consent_required');
  });

  it('a first-party app never shows the page, even with prompt=consent', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    expectCode(await navigate(e, authorizeUrl(client, { prompt: 'consent' }), jar), client.redirectUris[0]!);
  });

  it('an answer whose token is another session’s, another request’s, made up, or from another site is refused with a page', async () => {
    const { client } = await seedClient();
    const { jar } = await signedInBrowser(e);
    const { jar: other } = await signedInBrowser(e);
    const { html } = await consentPage(authorizeUrl(client), jar);
    const form = consentForm(html);
    const refusedPage = async (r: Response) => {
      expect(r.status).toBe(403);
      expect(r.headers.get('location')).toBeNull();
    };
    await refusedPage(await answer(other, { ...form, decision: 'allow' }));
    await refusedPage(await answer(jar, { ...form, request: form.request.replace('scope=openid%20email', 'scope=openid%20email%20profile'), decision: 'allow' }));
    await refusedPage(await answer(jar, { ...form, consent_token: `${Math.floor(Date.now() / 1000)}.${'A'.repeat(43)}`, decision: 'allow' }));
    const cross = await answer(jar, { ...form, decision: 'allow' }, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(await sessionRows('SELECT * FROM oauth_consents', [], userIdOf(jar))).toHaveLength(0);
    expect(await sessionRows('SELECT * FROM oauth_codes', [], userIdOf(jar))).toHaveLength(0);
    // The real answer still works.
    expectCode(await answer(jar, { ...form, decision: 'allow' }), client.redirectUris[0]!);
  });

  it('an answer for a request the client may no longer make goes back as its error', async () => {
    const { client } = await seedClient();
    const { jar } = await signedInBrowser(e);
    const { html } = await consentPage(authorizeUrl(client, { scope: 'openid profile' }), jar);
    await env.DB.prepare('UPDATE oauth_clients SET allowed_scopes = ? WHERE id = ?').bind('["openid"]', client.id).run();
    expectErrorRedirect(await answer(jar, { ...consentForm(html), decision: 'allow' }), client.redirectUris[0]!, 'invalid_scope');
  });
});

