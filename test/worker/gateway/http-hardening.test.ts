/**
 * HTTP details a new user trips over: the development gateway opened
 * at another loopback name than PUBLIC_URL's, unknown gateway paths in a browser, wrong methods
 * (405 with Allow), missing body fields, and RFC 6750 codes in WWW-Authenticate.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../../src/index';
import { call, defaultEnv, GOOD_PASSWORD, makeEnv, registerUser, seedUser, uniqueEmail, type TestEnv } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

const NAVIGATE = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none' };

/** Sends a request to an absolute URL (the helpers' `call` always uses PUBLIC_URL's origin). */
async function fetchAt(url: string, env: TestEnv, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('cf-connecting-ip')) headers.set('cf-connecting-ip', '203.0.113.9');
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(url, { ...init, headers, redirect: 'manual' }), env as never, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe('development gateway at another loopback name', () => {
  const origin = recordingOrigin(() => new Response('private page'));
  const devEnv = makeEnv({
    ENVIRONMENT: 'development',
    PUBLIC_URL: 'http://localhost:8787',
    ROUTES: JSON.stringify([{ path: '/private', origin: 'service:O', auth: 'required' }]),
    O: origin,
  });

  it('sends 127.0.0.1 and [::1] to PUBLIC_URL’s host with the same path and query (307)', async () => {
    for (const host of ['127.0.0.1', '[::1]']) {
      const r = await fetchAt(`http://${host}:8787/auth/login?return_to=%2Fprivate%3Fa%3D1`, devEnv, { headers: NAVIGATE });
      expect(r.status, host).toBe(307);
      expect(r.headers.get('location'), host).toBe('http://localhost:8787/auth/login?return_to=%2Fprivate%3Fa%3D1');
    }
  });

  it('keeps the method and body of a form post: 307 to the same URL on PUBLIC_URL’s host', async () => {
    const r = await fetchAt('http://127.0.0.1:8787/auth/login', devEnv, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: 'email=a%40example.com&password=x',
    });
    expect(r.status).toBe(307);
    expect(r.headers.get('location')).toBe('http://localhost:8787/auth/login');
  });

  it('keeps return_to through a password sign-in started at 127.0.0.1', async () => {
    const email = uniqueEmail('loopback');
    await registerUser(email, GOOD_PASSWORD, devEnv);
    // The browser opens a protected page at 127.0.0.1: it is sent to localhost first ...
    const first = await fetchAt('http://127.0.0.1:8787/private/report?y=1', devEnv, { headers: NAVIGATE });
    expect(first.status).toBe(307);
    expect(first.headers.get('location')).toBe('http://localhost:8787/private/report?y=1');
    // ... where the sign-in redirect names the localhost URL ...
    const second = await fetchAt(first.headers.get('location')!, devEnv, { headers: NAVIGATE });
    expect(second.status).toBe(302);
    const login = new URL(second.headers.get('location')!, 'http://localhost:8787');
    expect(login.searchParams.get('return_to')).toBe('http://localhost:8787/private/report?y=1');
    // ... which the sign-in page keeps (as a path on PUBLIC_URL) ...
    const page = await fetchAt(login.href, devEnv, { headers: NAVIGATE });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('name="return_to" value="/private/report?y=1"');
    // ... and the form post lands there after signing in.
    const signedIn = await fetchAt('http://localhost:8787/auth/login', devEnv, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', origin: 'http://localhost:8787' },
      body: new URLSearchParams({ email, password: GOOD_PASSWORD, return_to: '/private/report?y=1' }).toString(),
    });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('/private/report?y=1');
  });

  it('answers PUBLIC_URL’s own host and forward-auth directly', async () => {
    const own = await fetchAt('http://localhost:8787/auth/health', devEnv);
    expect(own.status).toBe(200);
    expect(await own.json()).toEqual({ status: 'ok' });
    // A proxy (nginx auth_request) treats a redirect from forward-auth as an error.
    const verify = await fetchAt('http://127.0.0.1:8787/auth/verify', devEnv);
    expect(verify.status).toBe(401);
    expect(await verify.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('leaves another port alone (it may be another service of the developer’s)', async () => {
    const r = await fetchAt('http://127.0.0.1:9999/auth/health', devEnv);
    expect(r.status).toBe(200);
  });

  it('never redirects in production, even when PUBLIC_URL is a loopback name', async () => {
    // https: production refuses an http PUBLIC_URL; the https redirect is the only one allowed.
    const prodEnv = makeEnv({ PUBLIC_URL: 'https://localhost:8787' });
    const r = await fetchAt('https://127.0.0.1:8787/auth/health', prodEnv, { headers: NAVIGATE });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok' });
  });
});

describe('unknown gateway paths', () => {
  it('a browser gets the HTML error page with a nonce CSP and the gateway headers', async () => {
    const r = await call('/auth/no-such-page', { headers: NAVIGATE });
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = r.headers.get('content-security-policy')!;
    const nonce = /style-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(csp).toContain("frame-ancestors 'none'");
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const html = await r.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('Page not found');
    expect(html).toContain(`nonce="${nonce}"`);
    expect(html).toContain('href="/auth/login"');
  });

  it('an API client still gets JSON not_found', async () => {
    const r = await call('/auth/no-such-page', { headers: { accept: 'application/json' } });
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toMatchObject({ error: 'not_found', error_description: 'No such endpoint.' });
  });
});

describe('wrong method on a gateway endpoint', () => {
  const cases: [method: string, path: string, allow: string][] = [
    ['PUT', '/auth/login', 'GET, HEAD, POST'],
    ['DELETE', '/auth/register', 'GET, HEAD, POST'],
    ['GET', '/auth/logout-all', 'POST'],
    ['POST', '/auth/health', 'GET, HEAD'],
    ['PATCH', '/auth/login/github', 'GET, HEAD'],
    ['PUT', '/auth/refresh', 'GET, HEAD, POST'],
    ['PUT', '/auth/sessions/abc', 'DELETE'],
    ['POST', '/.well-known/jwks.json', 'GET, HEAD'],
  ];
  for (const [method, path, allow] of cases) {
    it(`${method} ${path}: 405 method_not_allowed, Allow: ${allow}`, async () => {
      const r = await call(path, { method, headers: { accept: 'application/json' } });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe(allow);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await r.json()).toMatchObject({ error: 'method_not_allowed', error_description: expect.stringContaining(method) });
    });
  }

  it('a browser navigation to a POST-only endpoint gets the HTML page with Allow', async () => {
    const r = await call('/auth/logout-all', { headers: NAVIGATE });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await r.text()).toContain('does not answer GET requests');
  });

  it('the right method still works, and a path with no route at all stays 404', async () => {
    expect((await call('/auth/health')).status).toBe(200);
    const r = await call('/auth/loginx', { method: 'PUT' });
    expect(r.status).toBe(404);
    expect(r.headers.get('allow')).toBeNull();
    expect(await r.json()).toMatchObject({ error: 'not_found' });
  });
});

describe('a missing required field is named as missing', () => {
  it('JSON sign-in without email or password', async () => {
    const noEmail = await call('/auth/login', { json: { password: GOOD_PASSWORD } });
    expect(noEmail.status).toBe(400);
    expect(await noEmail.json()).toMatchObject({ error: 'invalid_request', error_description: 'Field "email": is required' });
    const noPassword = await call('/auth/register', { json: { email: uniqueEmail() } });
    expect(noPassword.status).toBe(400);
    expect(await noPassword.json()).toMatchObject({ error: 'invalid_request', error_description: 'Field "password": is required' });
  });

  it('an unknown field is still called unknown', async () => {
    const r = await call('/auth/login', { json: { email: uniqueEmail(), password: GOOD_PASSWORD, nickname: 'x' } });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: 'invalid_request', error_description: 'Field "nickname": is not a known field' });
  });

  it('a form post without a password shows the page with the same message', async () => {
    const r = await call('/auth/login', { form: { email: uniqueEmail() }, headers: { 'sec-fetch-site': 'same-origin' } });
    expect(r.status).toBe(400);
    expect(await r.text()).toContain('Field &quot;password&quot;: is required');
  });
});

describe('WWW-Authenticate carries only RFC 6750 codes', () => {
  it('a wrong password: JSON invalid_credentials, header error="invalid_request"', async () => {
    const email = uniqueEmail('rfc6750');
    await seedUser({ email });
    const r = await call('/auth/login', { json: { email, password: 'not the password at all' } });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_credentials' });
    expect(r.headers.get('www-authenticate')).toBe('Bearer error="invalid_request", error_description="The email or password is incorrect."');
  });

  it('a bad token keeps error="invalid_token"', async () => {
    const r = await call('/auth/me', { headers: { authorization: 'Bearer not-a-token' }, env: defaultEnv });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="/);
  });
});
