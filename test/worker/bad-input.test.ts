/** Every malformed request gets its DESIGN.md error code, never a 500, and changes nothing. */
import { describe, expect, it } from 'vitest';
import { call, GOOD_PASSWORD, registerUser, stateSnapshot, uniqueEmail } from './helpers';

async function expectError(r: Response, status: number, code: string) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await r.json()) as { error: string; error_description: string };
  expect(body.error).toBe(code);
  expect(body.error_description.length).toBeGreaterThan(5);
  expect(JSON.stringify(body)).not.toMatch(/at \w+ \(|SQLITE|D1_|stack|\.ts:\d+/i);
}

describe('bad input', () => {
  it.each(['/auth/register', '/auth/login'])('%s: malformed JSON, wrong types, missing fields -> 400', async (path) => {
    const before = await stateSnapshot();
    await expectError(await call(path, { body: '{"email":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request');
    await expectError(await call(path, { body: '[]', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request');
    await expectError(await call(path, { body: 'null', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: 42, password: GOOD_PASSWORD } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail(), password: ['x'] } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: 'not-an-email', password: GOOD_PASSWORD } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { password: GOOD_PASSWORD } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail() } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, session: 'both' } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, nickname: 'x' } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, email_verified: true } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail(), password: GOOD_PASSWORD, roles: ['admin'] } }), 400, 'invalid_request');
    await expectError(await call(path, { json: { email: uniqueEmail(), password: 'x'.repeat(2000) } }), 400, 'invalid_request');
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
    const r = await call('/auth/login', { body: 'email=a%40b.co&email=c%40d.co&password=x', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' } });
    expect(r.status).toBe(400);
  });

  it('garbage cookies and headers never cause a 500', async () => {
    const t = await registerUser();
    for (const cookie of ['__Host-gatehouse=%%%', '__Host-gatehouse=' + 'a'.repeat(5000), '__Host-gatehouse', '=;=;;', `__Host-gatehouse=${t.refresh_token}`]) {
      const r = await call('/auth/me', { headers: { cookie } });
      expect(r.status).toBe(401);
    }
    for (const cookie of ['__Secure-gatehouse-refresh=%ZZ', '__Secure-gatehouse-refresh=' + 'b'.repeat(4000)]) {
      const r = await call('/auth/refresh', { method: 'POST', headers: { cookie, 'sec-fetch-site': 'same-origin' } });
      expect(r.status).toBe(401);
    }
    expect((await call('/auth/sessions/' + 'x'.repeat(300), { method: 'DELETE', headers: { authorization: `Bearer ${t.access_token}` } })).status).toBe(404);
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
    await registerUser(email);
    const before = await stateSnapshot();
    const variants: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }];
    for (const headers of variants) {
      const login = await call('/auth/login', { form: { email, password: GOOD_PASSWORD }, headers });
      expect(login.status).toBe(403);
      expect(login.headers.getSetCookie()).toEqual([]);
      const reg = await call('/auth/register', { form: { email: uniqueEmail(), password: GOOD_PASSWORD }, headers });
      expect(reg.status).toBe(403);
    }
    // A cross-site JSON sign-in is refused too (a browser could send it as a simple request only with text/plain, which is 415, but the check does not depend on that).
    const json = await call('/auth/login', { json: { email, password: GOOD_PASSWORD }, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(json.status).toBe(403);
    expect(await stateSnapshot()).toEqual(before);
  });
});
