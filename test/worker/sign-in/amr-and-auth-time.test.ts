/**
 * Sessions remember how (`amr`, RFC 8176) and when (`auth_time`) the user
 * signed in; access tokens, assertions and identity headers carry both; refresh keeps them.
 */
import { env } from 'cloudflare:test';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { verifyAccessTokenUncached } from '../../../src/tokens/access-token';
import { bearer, call, makeEnv, PUBLIC_URL, registerUser, type TestEnv, testKey } from '../support/helpers';
import { FakeGitHub, installFakeNetwork } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';
import { cookieSession, proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { sessionExec, sessionRow } from '../support/user-sessions-store';

const nowS = () => Math.floor(Date.now() / 1000);

describe('amr and auth_time in access tokens', () => {
  it('a password sign-in carries amr ["pwd"] and auth_time = the sign-in; /auth/me shows them', async () => {
    const before = nowS();
    const t = await registerUser();
    const claims = decodeJwt(t.access_token);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.auth_time).toBeGreaterThanOrEqual(before);
    expect(claims.auth_time).toBeLessThanOrEqual(claims.iat!);
    const row = await sessionRow<{ amr: string; auth_time: number }>('SELECT amr, auth_time FROM sessions WHERE id = ?', [claims.sid]);
    expect(row).toEqual({ amr: '["pwd"]', auth_time: claims.auth_time });
    const me = (await (await call('/auth/me', { headers: bearer(t.access_token) })).json()) as { session: { amr: string[]; auth_time: number } };
    expect(me.session).toMatchObject({ amr: ['pwd'], auth_time: claims.auth_time });
  });

  it('refresh keeps amr and auth_time (it is not a new authentication)', async () => {
    const t = await registerUser();
    const { sid } = decodeJwt(t.access_token) as { sid: string };
    await sessionExec(`UPDATE sessions SET amr = '["pwd","otp","mfa"]', auth_time = ? WHERE id = ?`, [nowS() - 5000, sid]);
    const r = await call('/auth/refresh', { json: { refresh_token: t.refresh_token } });
    expect(r.status).toBe(200);
    const claims = decodeJwt(((await r.json()) as { access_token: string }).access_token);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.auth_time).toBe((await sessionRow<{ auth_time: number }>('SELECT auth_time FROM sessions WHERE id = ?', [sid]))!.auth_time);
    expect(claims.auth_time).toBeLessThan(claims.iat! - 4000);
  });

  it('a session from before the migration (no auth_time) counts from its creation', async () => {
    const t = await registerUser();
    const { sid } = decodeJwt(t.access_token) as { sid: string };
    await sessionExec(`UPDATE sessions SET amr = '[]', auth_time = NULL, created_at = created_at - 100 WHERE id = ?`, [sid]);
    const r = await call('/auth/refresh', { json: { refresh_token: t.refresh_token } });
    const claims = decodeJwt(((await r.json()) as { access_token: string }).access_token);
    const created = (await sessionRow<{ created_at: number }>('SELECT created_at FROM sessions WHERE id = ?', [sid]))!.created_at;
    expect(claims).toMatchObject({ amr: [], auth_time: created });
  });
});

describe('OAuth sign-in', () => {
  let gh: FakeGitHub;
  let e: TestEnv;
  beforeAll(() => {
    installFakeNetwork();
    gh = FakeGitHub.create();
    e = makeEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret });
  });

  it('carries the provider id as amr', async () => {
    const email = `amr-gh-${Date.now()}@example.com`;
    gh.githubUser = { id: 900_000 + Math.floor(Math.random() * 1e6), login: 'amr', name: 'Amr', avatar_url: 'https://avatars.example.test/u/amr' };
    gh.emails = [{ email, primary: true, verified: true }];
    const r = await signIn('github', gh, e, '/after');
    expect(r.status).toBe(303);
    expect(decodeJwt(sessionCookies(r).access)).toMatchObject({ amr: ['github'] });
  });
});

describe('the claim schema', () => {
  const NOW = 1_800_000_000;
  const claims = (o: Record<string, unknown>) => ({
    iss: PUBLIC_URL, aud: PUBLIC_URL, sub: 'usr_1', sid: 'ses_1', jti: 'j1', iat: NOW, exp: NOW + 300,
    email: 'a@example.com', email_verified: true, roles: [], amr: ['pwd'], auth_time: NOW - 10, ...o,
  });
  it.each([
    ['amr missing', { amr: undefined }],
    ['amr a string', { amr: 'pwd' }],
    ['amr holding a number', { amr: [1] }],
    ['amr holding an empty name', { amr: [''] }],
    ['auth_time missing', { auth_time: undefined }],
    ['auth_time a string', { auth_time: String(NOW) }],
    ['auth_time not whole', { auth_time: NOW - 0.5 }],
    ['auth_time after iat', { auth_time: NOW + 31 }],
  ])('refuses a token with %s', async (_name, override) => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const key = (await importJWK(testKey, 'ES256')) as CryptoKey;
    const token = await new SignJWT(claims(override)).setProtectedHeader({ alg: 'ES256', kid: testKey.kid!, typ: 'at+jwt' }).sign(key);
    await expect(verifyAccessTokenUncached({ keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL }, token, NOW)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('accepts and returns them when well-formed', async () => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const key = (await importJWK(testKey, 'ES256')) as CryptoKey;
    const token = await new SignJWT(claims({ amr: ['pwd', 'otp', 'mfa'] })).setProtectedHeader({ alg: 'ES256', kid: testKey.kid!, typ: 'at+jwt' }).sign(key);
    const out = await verifyAccessTokenUncached({ keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL }, token, NOW);
    expect(out).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], auth_time: NOW - 10 });
  });
});

describe('identity sent to origins', () => {
  it('the proxy sends X-Auth-Amr and X-Auth-Auth-Time and the assertion carries both; client copies are dropped', async () => {
    const origin = recordingOrigin();
    const e = proxyEnv([{ path: '/app', origin: 'service:APP', auth: 'required' }], { APP: origin });
    const { cookies } = await cookieSession(e);
    const { auth_time } = decodeJwt(cookies['__Host-gatehouse']) as { auth_time: number };
    const r = await call('/app/x', { env: e, cookies, headers: { 'X-Auth-Amr': 'hwk,mfa', 'x_auth_auth_time': '9999999999' } });
    expect(r.status).toBe(200);
    const seen = origin.seen[0]!.headers;
    expect(seen['x-auth-amr']).toBe('pwd');
    expect(seen['x-auth-auth-time']).toBe(String(auth_time));
    expect(Object.keys(seen).filter((k) => k.replaceAll('_', '-').startsWith('x-auth-auth-time'))).toEqual(['x-auth-auth-time']);
    expect(decodeJwt(seen['x-auth-assertion']!)).toMatchObject({ amr: ['pwd'], auth_time });
  });

  it('an anonymous request on an optional route forwards no client-sent X-Auth-Amr', async () => {
    const origin = recordingOrigin();
    const e = proxyEnv([{ path: '/maybe', origin: 'service:APP', auth: 'optional' }], { APP: origin });
    const r = await call('/maybe/x', { env: e, headers: { 'x-auth-amr': 'mfa', 'X-AUTH-AUTH-TIME': '1' } });
    expect(r.status).toBe(200);
    expect(origin.seen[0]!.headers['x-auth-amr']).toBeUndefined();
    expect(origin.seen[0]!.headers['x-auth-auth-time']).toBeUndefined();
  });

  it('forward-auth answers with X-Auth-Amr and X-Auth-Auth-Time', async () => {
    const e = proxyEnv([{ path: '/app', origin: 'https://app.internal.example', auth: 'required' }]);
    const t = await registerUser(undefined, undefined, e);
    const r = await call('/auth/verify', { env: e, headers: { ...bearer(t.access_token), 'x-original-uri': '/app/x' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-amr')).toBe('pwd');
    expect(r.headers.get('x-auth-auth-time')).toBe(String(decodeJwt(t.access_token).auth_time));
    expect(decodeJwt(r.headers.get('x-auth-assertion')!)).toMatchObject({ amr: ['pwd'] });
  });
});
