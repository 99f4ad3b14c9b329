/** Every malformed request gets its DESIGN.md error code, never a 500, and changes nothing. */
import { describe, expect, it } from 'vitest';
import { call, GOOD_PASSWORD, registerUser, seedUser, stateSnapshot, uniqueEmail } from '../support/helpers';

/** Status, JSON `error` code and (when given) what the description must say, e.g. the field it names. */
async function expectError(r: Response, status: number, code: string, description?: string | RegExp) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await r.json()) as { error: string; error_description: string };
  expect(body.error).toBe(code);
  expect(body.error_description.length).toBeGreaterThan(5);
  if (description !== undefined) expect(body.error_description).toMatch(description);
  expect(JSON.stringify(body)).not.toMatch(/at \w+ \(|SQLITE|D1_|stack|\.ts:\d+/i);
}

describe('bad input', () => {
  it.each(['/auth/register', '/auth/login'])('%s: malformed JSON, wrong types, missing fields -> 400', async (path) => {
    const before = await stateSnapshot();
    const bad = (r: Promise<Response>, description: string | RegExp) => r.then((res) => expectError(res, 400, 'invalid_request', description));
    const raw = (body: string) => call(path, { body, headers: { 'content-type': 'application/json' } });
    await bad(raw('{"email":'), 'The request body is not valid JSON.');
    await bad(raw('[]'), 'The request body must be an object.');
    await bad(raw('null'), 'The request body must be an object.');
    await bad(call(path, { json: { email: 42, password: GOOD_PASSWORD } }), /^Field "email": /);
    await bad(call(path, { json: { email: uniqueEmail(), password: ['x'] } }), /^Field "password": /);
    await bad(call(path, { json: { email: 'not-an-email', password: GOOD_PASSWORD } }), /^Field "email": /);
    await bad(call(path, { json: { password: GOOD_PASSWORD } }), 'Field "email": is required');
    await bad(call(path, { json: { email: uniqueEmail() } }), 'Field "password": is required');
    await bad(call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, session: 'both' } }), /^Field "session": /);
    await bad(call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, nickname: 'x' } }), 'Field "nickname": is not a known field');
    await bad(call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, email_verified: true } }), 'Field "email_verified" cannot be set by a client.');
    await bad(call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, roles: ['admin'] } }), 'Field "roles" cannot be set by a client.');
    await bad(call(path, { json: { email: uniqueEmail(), password: 'x'.repeat(2000) } }), /^Field "password": /);
    expect(await stateSnapshot()).toEqual(before);
  });

  it('a body over 64 KiB gets 413, with or without Content-Length', async () => {
    const before = await stateSnapshot();
    const big = JSON.stringify({ email: uniqueEmail(), password: GOOD_PASSWORD, name: 'x'.repeat(70 * 1024) });
    await expectError(await call('/auth/register', { body: big, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 80; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)));
        controller.close();
      },
    });
    await expectError(await call('/auth/login', { body: stream, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
    expect(await stateSnapshot()).toEqual(before);
  });

  it('a wrong content type gets 415', async () => {
    const before = await stateSnapshot();
    const body = JSON.stringify({ email: uniqueEmail(), password: GOOD_PASSWORD });
    for (const type of ['text/plain', 'application/xml', 'application/jsonx', '']) {
      const r = await call('/auth/register', { body, headers: type ? { 'content-type': type } : {} });
      await expectError(r, 415, 'unsupported_media_type');
    }
    expect(await stateSnapshot()).toEqual(before);
  });

  it('a form field given twice is refused', async () => {
    const headers = { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' };
    const r = await call('/auth/login', { body: 'email=a%40b.co&email=c%40d.co&password=x', headers });
    expect(r.status).toBe(400);
    // A form post is a browser's: the sign-in page again, saying what was wrong.
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    const html = await r.text();
    expect(html).toContain('Field &quot;email&quot; must be given once, as text.');
  });

  it('garbage cookies and headers never cause a 500', async () => {
    const t = await registerUser();
    for (const cookie of ['__Host-gatehouse=%%%', '__Host-gatehouse=' + 'a'.repeat(5000), '__Host-gatehouse', '=;=;;', `__Host-gatehouse=${t.refresh_token}`]) {
      await expectError(await call('/auth/me', { headers: { cookie } }), 401, 'invalid_token');
    }
    // Beside a real access cookie, as a browser sends them, so the refresh cookie itself is read.
    for (const refresh of ['__Secure-gatehouse-refresh=%ZZ', '__Secure-gatehouse-refresh=' + 'b'.repeat(4000)]) {
      const cookie = `__Host-gatehouse=${t.access_token}; ${refresh}`;
      const r = await call('/auth/refresh', { method: 'POST', headers: { cookie, 'sec-fetch-site': 'same-origin' } });
      await expectError(r, 401, 'invalid_token');
    }
    const longId = await call('/auth/sessions/' + 'x'.repeat(300), { method: 'DELETE', headers: { authorization: `Bearer ${t.access_token}` } });
    await expectError(longId, 404, 'not_found');
  });

  it('unknown auth endpoints and wrong methods get JSON, not a 500', async () => {
    const r = await call('/auth/nope');
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: 'not_found' });
    const m = await call('/auth/me', { method: 'POST', json: {} });
    expect(m.status).toBe(405);
    expect(await m.json()).toMatchObject({ error: 'method_not_allowed' });
  });

  it('responses carry secure headers', async () => {
    const r = await call('/auth/health');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    expect(await r.json()).toEqual({ status: 'ok' });
  });
});

describe('login CSRF', () => {
  it('refuses cross-site form posts to sign-in and registration', async () => {
    const email = uniqueEmail();
    await seedUser({ email });
    const before = await stateSnapshot();
    const variants: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }];
    for (const headers of variants) {
      const login = await call('/auth/login', { form: { email, password: GOOD_PASSWORD }, headers });
      expect(login.headers.getSetCookie()).toEqual([]);
      await expectError(login, 403, 'forbidden', 'Cross-site request refused.');
      const reg = await call('/auth/register', { form: { email: uniqueEmail(), password: GOOD_PASSWORD }, headers });
      await expectError(reg, 403, 'forbidden', 'Cross-site request refused.');
    }
    // A cross-site JSON sign-in is refused too (a browser could send it as a simple request only with text/plain, which is 415, but the check does not depend on that).
    const json = await call('/auth/login', { json: { email, password: GOOD_PASSWORD }, headers: { 'sec-fetch-site': 'cross-site' } });
    await expectError(json, 403, 'forbidden', 'Cross-site request refused.');
    expect(await stateSnapshot()).toEqual(before);
  });
});
