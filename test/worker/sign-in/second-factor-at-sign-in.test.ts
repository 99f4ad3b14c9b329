/**
 * Sign-in of a user with a second factor: the password (or provider) gives no token, only a
 * short-lived single-use pending state; `/auth/mfa` with a TOTP or recovery code completes it.
 * Every refusal: wrong, reused and expired codes, used recovery codes, missing/expired/used
 * pending state, the attempt limit.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { call, countRows, GOOD_PASSWORD, setCookies, type TestEnv } from '../support/helpers';
import { FakeGitHub, installFakeNetwork } from '../support/oauth-fakes';
import { signIn } from '../support/oauth-helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { ENCRYPTION_KEY, mfaEnv, NAV, totpCode, updateJar, userWithTotp } from '../support/second-factor-helpers';

const e = mfaEnv();

async function passwordStep(email: string, extra: Record<string, unknown> = {}, testEnv: TestEnv = e) {
  const r = await call('/auth/login', { env: testEnv, json: { email, password: GOOD_PASSWORD, ...extra } });
  expect(r.status).toBe(401);
  const body = (await r.json()) as { error: string; mfa_token?: string; expires_in: number; enrolment_required: boolean };
  return { r, body };
}

async function failures(userId: string) {
  return env.DB.prepare('SELECT count FROM second_factor_failures WHERE user_id = ?').bind(userId).first<number>('count');
}

describe('password sign-in of a user with an authenticator app (token mode)', () => {
  it('issues no token, only an mfa_token; the code completes it with amr pwd+otp+mfa', async () => {
    const u = await userWithTotp(e);
    const sessionsBefore = await countRows('sessions', 'user_id = ?', u.userId);
    const { r, body } = await passwordStep(u.email);
    expect(body).toMatchObject({ error: 'mfa_required', enrolment_required: false, expires_in: 300 });
    expect(body).not.toHaveProperty('access_token');
    expect(body).not.toHaveProperty('refresh_token');
    expect(body.mfa_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.headers.get('www-authenticate')).toContain('Bearer');
    expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(sessionsBefore);
    // Only the hash is stored.
    expect(await countRows('mfa_pending', 'id_hash = ?', body.mfa_token)).toBe(0);
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.userId)).toBe(1);

    const done = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(200);
    const tokens = (await done.json()) as { access_token: string; refresh_token: string; user: { email: string } };
    expect(tokens.user.email).toBe(u.email);
    const claims = decodeJwt(tokens.access_token);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.auth_time).toBeGreaterThan(Math.floor(Date.now() / 1000) - 60);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(sessionsBefore + 1);
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.userId)).toBe(0);

    // The same pending state again: refused, clearly, and no second session.
    const replay = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(u.secret, -1) } });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_token', error_description: expect.stringContaining('already been completed') });
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(sessionsBefore + 1);
  });

  it('a wrong code is refused and counted; the pending state stays usable', async () => {
    const u = await userWithTotp(e);
    const { body } = await passwordStep(u.email);
    const right = totpCode(u.secret, 1);
    const wrong = right === '123456' ? '654321' : '123456';
    const r = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: wrong } });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_credentials', error_description: expect.stringContaining('incorrect or has expired') });
    expect(await failures(u.userId)).toBe(1);
    expect(await countRows('auth_events', "user_id = ? AND event = 'second_factor' AND outcome = 'failure'", u.userId)).toBe(1);
    const ok = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: right } });
    expect(ok.status).toBe(200);
    expect(await failures(u.userId)).toBeNull(); // a success clears the count
  });

  it('a code already used (its time step spent) is refused, as is an older one', async () => {
    const u = await userWithTotp(e);
    // The enrolment spent the current step: the same code again is a replay.
    const { body } = await passwordStep(u.email);
    const reused = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: u.enrolCode } });
    expect(reused.status).toBe(401);
    expect(await reused.json()).toMatchObject({ error: 'invalid_credentials', error_description: expect.stringContaining('already been used') });
    const older = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(u.secret, -1) } });
    expect(older.status).toBe(401);
    expect(await older.json()).toMatchObject({ error: 'invalid_credentials' });
    expect(await failures(u.userId)).toBe(2);
  });

  it('a code from outside the ±1 step window (expired) is refused', async () => {
    const u = await userWithTotp(e);
    const { body } = await passwordStep(u.email);
    const r = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(u.secret, -3) } });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_credentials', error_description: expect.stringContaining('incorrect or has expired') });
  });

  it('an expired pending state is refused with a clear error', async () => {
    const u = await userWithTotp(e);
    const { body } = await passwordStep(u.email);
    await env.DB.prepare('UPDATE mfa_pending SET expires_at = ? WHERE user_id = ?').bind(Math.floor(Date.now() / 1000) - 1, u.userId).run();
    const r = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: totpCode(u.secret, 1) } });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token', error_description: expect.stringContaining('expired') });
    expect(await failures(u.userId)).toBeNull(); // nothing was tried
  });

  it('no pending state at all, or a made-up one: 401 invalid_token (JSON) and a clear page (browser)', async () => {
    const none = await call('/auth/mfa', { env: e, json: { code: '123456' } });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'invalid_token', error_description: expect.stringContaining('No sign-in is waiting') });
    const forged = await call('/auth/mfa', { env: e, json: { mfa_token: 'A'.repeat(43), code: '123456' } });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ error: 'invalid_token' });
    const page = await call('/auth/mfa', { env: e, headers: NAV });
    expect(page.status).toBe(401);
    const html = await page.text();
    expect(html).toContain('No sign-in is waiting for a second factor');
    expect(html).toContain('href="/auth/login"');
  });

  it('bad input is a 400, not a guess: letters, too long, missing code', async () => {
    const u = await userWithTotp(e);
    const { body } = await passwordStep(u.email);
    for (const code of ['12345', 'abcdef', '1234567', '']) {
      const r = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code } });
      expect(r.status, code).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    }
    const extra = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: '123456', user_id: u.userId } });
    expect(extra.status).toBe(400);
    expect(await failures(u.userId)).toBeNull();
  });

  it('after MFA_ATTEMPT_LIMIT wrong codes even the right one waits (429 with Retry-After)', async () => {
    const limited = mfaEnv({ MFA_ATTEMPT_LIMIT: '3' });
    const u = await userWithTotp(limited);
    const { body } = await passwordStep(u.email, {}, limited);
    const right = totpCode(u.secret, 1);
    const wrong = right === '000000' ? '111111' : '000000';
    for (let i = 0; i < 3; i++) expect((await call('/auth/mfa', { env: limited, json: { mfa_token: body.mfa_token, code: wrong } })).status).toBe(401);
    const r = await call('/auth/mfa', { env: limited, json: { mfa_token: body.mfa_token, code: right } });
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(await r.json()).toMatchObject({ error: 'rate_limited' });
    expect(await failures(u.userId)).toBe(3);
    expect(await countRows('auth_events', "user_id = ? AND event = 'second_factor_failure_burst' AND outcome = 'security'", u.userId)).toBe(1);
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.userId)).toBe(1);
  });
});

describe('recovery codes at sign-in', () => {
  it('a recovery code completes the sign-in once, is a security event, and cannot be used again', async () => {
    const u = await userWithTotp(e);
    const code = u.codes[3]!;
    const { body } = await passwordStep(u.email);
    const r = await call('/auth/mfa', { env: e, json: { mfa_token: body.mfa_token, code: code.toUpperCase().replaceAll('-', ' ') } });
    expect(r.status).toBe(200);
    expect(decodeJwt(((await r.json()) as { access_token: string }).access_token).amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(await countRows('recovery_codes', 'user_id = ? AND used_at IS NOT NULL', u.userId)).toBe(1);
    const event = await env.DB.prepare("SELECT outcome, detail FROM auth_events WHERE user_id = ? AND event = 'recovery_code_used'").bind(u.userId).first<{ outcome: string; detail: string }>();
    expect(event?.outcome).toBe('security');
    expect(JSON.parse(event!.detail)).toMatchObject({ remaining: 9 });

    const second = await passwordStep(u.email);
    const again = await call('/auth/mfa', { env: e, json: { mfa_token: second.body.mfa_token, code } });
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: 'invalid_credentials', error_description: expect.stringContaining('already been used') });
  });
});

describe('browsers (form posts and cookie mode)', () => {
  it('the password form leads to the code page with an HttpOnly __Host- cookie; the code signs in and returns', async () => {
    const u = await userWithTotp(e);
    const first = await call('/auth/login', { env: e, headers: NAV, form: { email: u.email, password: GOOD_PASSWORD, return_to: '/after?x=1' } });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/auth/mfa');
    const jar = setCookies(first);
    expect(jar.has('__Host-gatehouse')).toBe(false);
    expect(jar.has('__Secure-gatehouse-refresh')).toBe(false);
    const mfa = jar.get('__Host-gatehouse-mfa')!;
    expect(mfa.attributes).toMatch(/Max-Age=300/);
    expect(mfa.attributes).toMatch(/HttpOnly/);
    expect(mfa.attributes).toMatch(/Secure/);
    expect(mfa.attributes).toMatch(/Path=\//);
    const cookies = { '__Host-gatehouse-mfa': mfa.value };

    const page = await call('/auth/mfa', { env: e, cookies, headers: NAV });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('action="/auth/mfa"');
    expect(html).toContain('name="code"');

    const wrong = await call('/auth/mfa', { env: e, cookies, headers: NAV, form: { code: '000000' === totpCode(u.secret, 1) ? '111111' : '000000' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('role="alert"');

    const done = await call('/auth/mfa', { env: e, cookies, headers: NAV, form: { code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/after?x=1');
    const after = updateJar({ ...cookies }, done);
    expect(after['__Host-gatehouse-mfa']).toBeUndefined();
    expect(decodeJwt(after['__Host-gatehouse']!).amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(after['__Secure-gatehouse-refresh']).toBeTruthy();
  });

  it('cookie-mode JSON gets mfa_required without the handle in the body (cookie only)', async () => {
    const u = await userWithTotp(e);
    const { r, body } = await passwordStep(u.email, { session: 'cookie' });
    expect(body.mfa_token).toBeUndefined();
    const handle = setCookies(r).get('__Host-gatehouse-mfa')!.value;
    const done = await call('/auth/mfa', { env: e, cookies: { '__Host-gatehouse-mfa': handle }, json: { code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(200);
    const json = (await done.json()) as Record<string, unknown>;
    expect(json).not.toHaveProperty('access_token');
    expect(decodeJwt(setCookies(done).get('__Host-gatehouse')!.value).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('the proxy never passes the pending-state cookie to an origin', async () => {
    const origin = recordingOrigin();
    const pe = proxyEnv([{ path: '/pub', origin: 'service:APP', auth: 'public' }], { APP: origin }, { TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });
    const r = await call('/pub/x', { env: pe, headers: { cookie: '__Host-gatehouse-mfa=abc; theirs=1' } });
    expect(r.status).toBe(200);
    expect(origin.seen[0]!.headers.cookie).toBe('theirs=1');
  });
});

describe('OAuth sign-in of a user with a second factor', () => {
  let gh: FakeGitHub;
  let oe: TestEnv;
  beforeAll(() => {
    installFakeNetwork();
    gh = FakeGitHub.create();
    oe = mfaEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret });
  });

  it('the callback starts no session but a pending state; the code completes it with amr [github, otp, mfa]', async () => {
    const u = await userWithTotp(oe);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(u.userId).run();
    gh.githubUser = { id: 700_000 + Math.floor(Math.random() * 1e6), login: 'mfa', name: 'Mfa', avatar_url: 'https://avatars.example.test/u/mfa' };
    gh.emails = [{ email: u.email, primary: true, verified: true }];
    const sessionsBefore = await countRows('sessions', 'user_id = ?', u.userId);
    const r = await signIn('github', gh, oe, '/app');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/mfa');
    const jar = setCookies(r);
    expect(jar.has('__Host-gatehouse')).toBe(false);
    expect(await countRows('sessions', 'user_id = ?', u.userId)).toBe(sessionsBefore);
    const done = await call('/auth/mfa', { env: oe, cookies: { '__Host-gatehouse-mfa': jar.get('__Host-gatehouse-mfa')!.value }, headers: NAV, form: { code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/app');
    expect(decodeJwt(setCookies(done).get('__Host-gatehouse')!.value).amr).toEqual(['github', 'otp', 'mfa']);
  });
});

describe('alerts', () => {
  it('a used recovery code is POSTed to ALERT_WEBHOOK_URL like other security events, without the code', async () => {
    const WEBHOOK = 'https://alerts.example.net/hook';
    const ae = mfaEnv({ ALERT_WEBHOOK_URL: WEBHOOK });
    const u = await userWithTotp(ae);
    const login = await call('/auth/login', { env: ae, json: { email: u.email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await login.json()) as { mfa_token: string };
    const posted: string[] = [];
    const real = globalThis.fetch;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url !== WEBHOOK) return real(input, init);
      posted.push(String(init?.body));
      return new Response('ok');
    });
    try {
      const r = await call('/auth/mfa', { env: ae, json: { mfa_token, code: u.codes[0]! } });
      expect(r.status).toBe(200);
    } finally {
      spy.mockRestore();
    }
    const alerts = posted.map((b) => JSON.parse(b) as Record<string, unknown>).filter((b) => JSON.stringify(b).includes('recovery_code_used'));
    expect(alerts).toHaveLength(1);
    expect(posted.join('\n')).not.toContain(u.codes[0]!);
    expect(posted.join('\n')).not.toContain(u.codes[0]!.replaceAll('-', ''));
  });
});

describe('form errors on the code page', () => {
  it('a malformed code in a form post shows the code page again with the error (pending state kept)', async () => {
    const u = await userWithTotp(e);
    const first = await call('/auth/login', { env: e, headers: NAV, form: { email: u.email, password: GOOD_PASSWORD } });
    const cookies = { '__Host-gatehouse-mfa': setCookies(first).get('__Host-gatehouse-mfa')!.value };
    const r = await call('/auth/mfa', { env: e, cookies, headers: NAV, form: { code: 'x'.repeat(70) } });
    expect(r.status).toBe(400);
    const html = await r.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain('action="/auth/mfa"');
    expect(await countRows('mfa_pending', 'user_id = ? AND used_at IS NULL', u.userId)).toBe(1);
  });
});
