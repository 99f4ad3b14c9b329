/**
 * `GET /auth/verify` (forward-auth): 200 with identity headers and an assertion for the route
 * named by X-Forwarded-Uri / X-Original-URI, 401 without a session, 403 by policy.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, PUBLIC_URL, registerUser, uniqueEmail } from '../support/helpers';
import { cookieSession, promote, proxyEnv } from '../support/proxy-helpers';

const env = proxyEnv([
  { path: '/app', origin: 'https://app.internal.example', auth: 'required' },
  { path: '/ops', origin: 'https://ops.internal.example', auth: 'required', allow: { roles: ['ops'] }, audience: 'urn:ops' },
  { path: '/pub', origin: 'https://pub.internal.example', auth: 'public' },
]);

describe('GET /auth/verify', () => {
  it('401 without a session, with WWW-Authenticate', async () => {
    const r = await call('/auth/verify', { env, headers: { 'x-original-uri': '/app/x' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('invalid_token');
    expect(r.headers.get('x-auth-user-id')).toBeNull();
  });

  it('200 with identity headers and an assertion for the route\'s audience (cookie session)', async () => {
    const { cookies, email } = await cookieSession(env);
    const r = await call('/auth/verify', { env, cookies, headers: { 'x-forwarded-uri': '/app/page?x=1', 'x-auth-user-id': 'spoofed' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-email')).toBe(email);
    expect(r.headers.get('x-auth-user-id')).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(r.headers.get('x-auth-session-id')).toBeTruthy();
    expect(r.headers.get('cache-control')).toBe('no-store');
    const claims = decodeJwt(r.headers.get('x-auth-assertion')!);
    expect(claims).toMatchObject({ aud: 'https://app.internal.example', iss: PUBLIC_URL, email, sub: r.headers.get('x-auth-user-id') });
  });

  it('403 by policy, 200 once allowed; the URI picks the policy whatever its encoding', async () => {
    const email = uniqueEmail('fa');
    const { access_token } = await registerUser(email, undefined, env);
    for (const uri of ['/ops/deploy', '/pub/%2e%2e/ops/deploy', '/OPS', 'https://gate.example.com/ops']) {
      const r = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-original-uri': uri } });
      expect(r.status, uri).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
    const ops = await promote(env, email, { roles: ['ops'] });
    const ok = await call('/auth/verify', { env, headers: { ...bearer(ops), 'x-original-uri': '/ops/deploy' } });
    expect(ok.status).toBe(200);
    expect(decodeJwt(ok.headers.get('x-auth-assertion')!).aud).toBe('urn:ops');
    expect(ok.headers.get('x-auth-roles')).toBe('ops');
  });

  it('a forwarded URI that is not a plain path is refused (403), not guessed at', async () => {
    const { access_token } = await registerUser(undefined, undefined, env);
    for (const uri of ['/pub/..%2fops', '/pub/..;/ops', '/pub/%252e%252e/ops']) {
      const r = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-forwarded-uri': uri } });
      expect(r.status, uri).toBe(403);
    }
  });

  it('a public route answers 200 with no identity; an unknown path needs a session, audience PUBLIC_URL', async () => {
    const pub = await call('/auth/verify', { env, headers: { 'x-original-uri': '/pub/a' } });
    expect(pub.status).toBe(200);
    expect(pub.headers.get('x-auth-user-id')).toBeNull();
    expect((await call('/auth/verify', { env, headers: { 'x-original-uri': '/unknown' } })).status).toBe(401);
    expect((await call('/auth/verify', { env })).status).toBe(401);
    const { access_token } = await registerUser(undefined, undefined, env);
    const r = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-original-uri': '/unknown' } });
    expect(r.status).toBe(200);
    expect(decodeJwt(r.headers.get('x-auth-assertion')!).aud).toBe(PUBLIC_URL);
  });
});
