/**
 * X-Auth-Assertion: claims, lifetime, per-(session, audience) caching, and the origin-side
 * helper `verifyGatehouseAssertion` against the gateway's published JWKS.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthUser, ServiceCaller } from '../../../src/env';
import { generateSigningJwk, keyringFromJwks } from '../../../src/keys/keyring';
import { GatehouseAssertionError, verifyGatehouseAssertion, verifyGatehouseLogoutToken } from '../../../packages/verify/src/index';
import { gatehouse } from '../../../packages/verify/src/hono';
import { ASSERTION_REUSE_MARGIN_S, assertionFor } from '../../../src/tokens/assertion';
import { serviceAssertionFor } from '../../../src/tokens/service-assertion';
import { bearer, call, PUBLIC_URL, registerUser, testKey } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

afterEach(() => vi.restoreAllMocks());

const NOW = 1_900_000_000;
const user: AuthUser = {
  id: 'u1',
  email: 'a@example.com',
  emailVerified: true,
  roles: ['ops'],
  groups: ['eng'],
  groupsKnown: true,
  sessionId: 's1',
  tokenId: 'j1',
  tokenExpiresAt: NOW + 600,
  issuedAt: NOW,
  amr: ['pwd'],
  authTime: NOW,
};

describe('assertionFor', () => {
  it('signs with the active key, exp <= 60 s and never past the access token', async () => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const token = await assertionFor(ring, PUBLIC_URL, user, 'https://app.example', NOW);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: testKey.kid });
    expect(decodeJwt(token)).toEqual({
      iss: PUBLIC_URL,
      aud: 'https://app.example',
      sub: 'u1',
      email: 'a@example.com',
      email_verified: true,
      roles: ['ops'],
      groups: ['eng'],
      sid: 's1',
      amr: ['pwd'],
      auth_time: NOW,
      iat: NOW,
      exp: NOW + 60,
    });
    const dying = await assertionFor(ring, PUBLIC_URL, { ...user, sessionId: 's2', tokenExpiresAt: NOW + 10 }, 'https://app.example', NOW);
    expect(decodeJwt(dying).exp).toBe(NOW + 10);
  });

  it('is reused per (session, audience) until near expiry, and re-signed after a refresh', async () => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const first = await assertionFor(ring, PUBLIC_URL, user, 'aud-1', NOW);
    expect(await assertionFor(ring, PUBLIC_URL, user, 'aud-1', NOW + 60 - ASSERTION_REUSE_MARGIN_S - 1)).toBe(first);
    const other = await assertionFor(ring, PUBLIC_URL, user, 'aud-2', NOW);
    expect(other).not.toBe(first);
    expect(decodeJwt(other).aud).toBe('aud-2');
    const late = await assertionFor(ring, PUBLIC_URL, user, 'aud-1', NOW + 60 - ASSERTION_REUSE_MARGIN_S);
    expect(late).not.toBe(first);
    expect(decodeJwt(late).iat).toBe(NOW + 60 - ASSERTION_REUSE_MARGIN_S);
    const refreshed = await assertionFor(ring, PUBLIC_URL, { ...user, tokenId: 'j2', roles: ['ops', 'admin'] }, 'aud-1', NOW + 41);
    expect(decodeJwt(refreshed).roles).toEqual(['ops', 'admin']);
  });

  it('a key rotation signs with the new active key', async () => {
    const next = await generateSigningJwk('ES256');
    const ring = await keyringFromJwks({ keys: [next, testKey] });
    const token = await assertionFor(ring, PUBLIC_URL, user, 'aud-1', NOW);
    expect(decodeProtectedHeader(token).kid).toBe(next.kid);
  });
});

describe('through the proxy', () => {
  it('two requests of one session share one assertion; another session gets its own', async () => {
    const origin = recordingOrigin();
    const env = proxyEnv([{ path: '/', origin: 'service:O', auth: 'required' }], { O: origin });
    const a = await registerUser(undefined, undefined, env);
    const b = await registerUser(undefined, undefined, env);
    await call('/one', { env, headers: bearer(a.access_token) });
    await call('/two', { env, headers: bearer(a.access_token) });
    await call('/three', { env, headers: bearer(b.access_token) });
    const [x, y, z] = origin.seen.map((s) => s.headers['x-auth-assertion']!);
    expect(x).toBe(y);
    expect(z).not.toBe(x);
    expect(decodeJwt(z!).sub).toBe(b.user.id);
    expect(decodeJwt(x!).aud).toBe('service:O');
  });
});

describe('verifyGatehouseAssertion (origin helper)', () => {
  it('accepts a real assertion and refuses a wrong audience, a missing header and a tampered one', async () => {
    const origin = recordingOrigin();
    const env = proxyEnv([{ path: '/', origin: 'https://app.example', auth: 'required' }], {}, {});
    const u = await registerUser(undefined, undefined, env);
    const jwks = await (await call('/.well-known/jwks.json', { env })).text();
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (req.url === `${PUBLIC_URL}/.well-known/jwks.json`) return new Response(jwks, { headers: { 'content-type': 'application/json' } });
      return origin.fetch(req);
    });
    await call('/hello', { env, headers: bearer(u.access_token) });
    const seen = origin.seen[0]!;
    const request = new Request('https://app.example/hello', { headers: seen.headers });
    const who = await verifyGatehouseAssertion(request, { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: 'https://app.example' });
    expect(who).toMatchObject({ userId: u.user.id, email: u.user.email, emailVerified: false, roles: u.user.roles, sessionId: seen.headers['x-auth-session-id'] });
    expect(spy).toHaveBeenCalled();

    await expect(
      verifyGatehouseAssertion(request, { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: 'https://other.example' }),
    ).rejects.toThrow(GatehouseAssertionError);
    await expect(
      verifyGatehouseAssertion(new Request('https://app.example/'), { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: 'https://app.example' }),
    ).rejects.toThrow(/No X-Auth-Assertion/);
    const tampered = seen.headers['x-auth-assertion']!.replace(/\.[^.]+\./, `.${btoa(JSON.stringify({ ...decodeJwt(seen.headers['x-auth-assertion']!), roles: ['admin'] })).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}.`);
    await expect(
      verifyGatehouseAssertion({ headers: { 'x-auth-assertion': tampered } }, { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: 'https://app.example' }),
    ).rejects.toThrow(/not valid/);
  });
});

describe('the origin helper\'s key sets', () => {
  afterEach(() => vi.restoreAllMocks());

  it('keeps one key set per JWKS URL, at most 16: a seventeenth drops the oldest, which is fetched again', async () => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const token = await assertionFor(ring, PUBLIC_URL, user, 'https://app.example', NOW);
    const fetched = new Map<string, number>();
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      const url = new Request(input as RequestInfo).url;
      fetched.set(url, (fetched.get(url) ?? 0) + 1);
      return new Response(JSON.stringify(ring.jwks), { headers: { 'content-type': 'application/json' } });
    });
    const jwksUrl = (i: number) => `https://gateway-${i}.key-sets.example/.well-known/jwks.json`;
    // The outcome does not matter here (these gateways did not sign it): only whose keys were fetched.
    const verify = (i: number) => verifyGatehouseAssertion({ headers: { 'x-auth-assertion': token } }, { jwksUrl: jwksUrl(i), audience: 'https://app.example' }).catch(() => undefined);

    await verify(0);
    await verify(0);
    expect(fetched.get(jwksUrl(0))).toBe(1);
    for (let i = 1; i <= 16; i++) await verify(i);
    await verify(16);
    expect(fetched.get(jwksUrl(16))).toBe(1);
    await verify(0);
    expect(fetched.get(jwksUrl(0))).toBe(2);
  });
});

describe('a key the gateway stops publishing', () => {
  afterEach(() => vi.restoreAllMocks());

  it("stops verifying at origins within README's rotation wait: keys are kept at most 5 minutes", async () => {
    const removed = await keyringFromJwks({ keys: [testKey] });
    const successor = await keyringFromJwks({ keys: [await generateSigningJwk('ES256')] });
    let published = removed.jwks;
    let fetches = 0;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () => {
      fetches += 1;
      return new Response(JSON.stringify(published), { headers: { 'content-type': 'application/json' } });
    });
    const options = { jwksUrl: 'https://rotation.key-sets.example/.well-known/jwks.json', issuer: PUBLIC_URL, audience: 'https://app.example' };
    // Real time (`new Date()`, as jose's claim checks read it), whatever Date.now says below.
    const signedNow = () => {
      const now = Math.floor(new Date().getTime() / 1000);
      return assertionFor(removed, PUBLIC_URL, { ...user, tokenId: crypto.randomUUID(), tokenExpiresAt: now + 600 }, 'https://app.example', now);
    };
    const verify = async () => verifyGatehouseAssertion({ headers: { 'x-auth-assertion': await signedNow() } }, options);

    await expect(verify()).resolves.toMatchObject({ userId: user.id });
    // The operator drops the key (a leaked one, say): the JWKS no longer has it.
    published = successor.jwks;
    // The key sets' clock only (jose reads Date.now); the tokens' own times stay real.
    const start = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(start + 299_000);
    await expect(verify()).resolves.toMatchObject({ userId: user.id });
    expect(fetches).toBe(1);
    vi.spyOn(Date, 'now').mockReturnValue(start + 301_000);
    await expect(verify()).rejects.toThrow(/not valid/);
    expect(fetches).toBe(2);
  });
});

describe('token confusion between access tokens and assertions', () => {
  afterEach(() => vi.restoreAllMocks());
  const env = proxyEnv([]);

  it('an assertion whose aud is PUBLIC_URL (forward-auth, unknown path) is not accepted as an access token', async () => {
    const { access_token } = await registerUser(undefined, undefined, env);
    const r = await call('/auth/verify', { env, headers: { ...bearer(access_token), 'x-original-uri': '/elsewhere' } });
    const assertion = r.headers.get('x-auth-assertion')!;
    expect(decodeJwt(assertion).aud).toBe(PUBLIC_URL);
    const me = await call('/auth/me', { env, headers: bearer(assertion) });
    expect(me.status).toBe(401);
    expect(await me.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('the origin helper refuses a fresh access token presented as X-Auth-Assertion for audience PUBLIC_URL', async () => {
    const { access_token } = await registerUser(undefined, undefined, env);
    const jwks = await (await call('/.well-known/jwks.json', { env })).text();
    vi.spyOn(globalThis, 'fetch').mockImplementation(async () => new Response(jwks, { headers: { 'content-type': 'application/json' } }));
    await expect(
      verifyGatehouseAssertion({ headers: { 'x-auth-assertion': access_token } }, { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: PUBLIC_URL }),
    ).rejects.toThrow(/not valid/);
  });
});

describe("the origin helper's settings fail closed", () => {
  afterEach(() => vi.restoreAllMocks());
  const jwksUrl = `${PUBLIC_URL}/.well-known/jwks.json`;

  /** Serves the gateway's keys at any URL, and records what was fetched. */
  async function gatewayKeys() {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const fetched: string[] = [];
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      fetched.push(new Request(input as RequestInfo).url);
      return new Response(JSON.stringify(ring.jwks), { headers: { 'content-type': 'application/json' } });
    });
    const assertion = (audience: string) => assertionFor(ring, PUBLIC_URL, { ...user, tokenId: crypto.randomUUID(), issuedAt: now(), authTime: now(), tokenExpiresAt: now() + 600 }, audience, now());
    return { ring, fetched, assertion };
  }
  const now = () => Math.floor(Date.now() / 1000);

  it('refuses to verify without an audience (an unset setting), rather than accept an assertion for any route', async () => {
    const { assertion } = await gatewayKeys();
    const forAnotherRoute = await assertion('https://another-route.example');
    // Settings read from JSON or a Worker's bindings are untyped: the audience may simply be missing.
    const settings = JSON.parse(JSON.stringify({ jwksUrl }));
    await expect(verifyGatehouseAssertion({ headers: { 'x-auth-assertion': forAnotherRoute } }, settings)).rejects.toThrow(TypeError);
    await expect(verifyGatehouseAssertion({ headers: { 'x-auth-assertion': forAnotherRoute } }, { ...settings, audience: '' })).rejects.toThrow(/audience/);
    await expect(verifyGatehouseLogoutToken(forAnotherRoute, settings)).rejects.toThrow(TypeError);

    // The middleware's function form, reading a binding the Worker does not have: the
    // application's error (500), and the handler never runs.
    let reached = false;
    const app = new Hono().use(gatehouse((c) => ({ jwksUrl: c.env.GATEHOUSE_JWKS_URL, audience: c.env.AUDIENCE })));
    app.get('/', (c) => {
      reached = true;
      return c.text('secret');
    });
    const res = await app.fetch(new Request('https://origin.example/', { headers: { 'x-auth-assertion': forAnotherRoute } }), { GATEHOUSE_JWKS_URL: jwksUrl });
    expect(res.status).toBe(500);
    expect(reached).toBe(false);
  });

  it('fetches keys only over https, or plain http to a loopback host: anyone on the path of a plain-http JWKS could serve keys of their own', async () => {
    const { fetched, assertion } = await gatewayKeys();
    const token = await assertion('https://app.example');
    const request = { headers: { 'x-auth-assertion': token } };
    await expect(
      verifyGatehouseAssertion(request, { jwksUrl: 'http://gate.example.com/.well-known/jwks.json', issuer: PUBLIC_URL, audience: 'https://app.example' }),
    ).rejects.toThrow(/https/);
    expect(fetched).toEqual([]);
    // A gateway in development (`wrangler dev`) is plain http on a loopback address.
    for (const host of ['localhost:8787', '127.0.0.1:8787', '[::1]:8787']) {
      await expect(verifyGatehouseAssertion(request, { jwksUrl: `http://${host}/.well-known/jwks.json`, issuer: PUBLIC_URL, audience: 'https://app.example' })).resolves.toMatchObject({ userId: user.id });
    }
    expect(fetched).toHaveLength(3);
  });

  it('lets a service through only when acceptServices is true itself: a setting read as the string "false" keeps services out', async () => {
    const { ring } = await gatewayKeys();
    const caller: ServiceCaller = { kind: 'service', clientId: 'cli_settings', sessionId: 'svc:cli_settings:0', scope: 'reports:read', tokenId: crypto.randomUUID(), tokenExpiresAt: now() + 600 };
    const request = { headers: { 'x-auth-assertion': await serviceAssertionFor(ring, PUBLIC_URL, caller, 'https://app.example', now()) } };
    const settings = JSON.parse(JSON.stringify({ jwksUrl, audience: 'https://app.example', acceptServices: 'false' }));
    await expect(verifyGatehouseAssertion(request, settings)).rejects.toThrow(/acceptServices/);
    await expect(verifyGatehouseAssertion(request, { ...settings, acceptServices: true })).resolves.toMatchObject({ kind: 'service', clientId: 'cli_settings' });
  });

  it('takes the clock tolerance only as a number of seconds, 0 or more: a duration string would make a logout\'s expiresAt a string', async () => {
    const { assertion } = await gatewayKeys();
    const token = await assertion('https://app.example');
    const settings = JSON.parse(JSON.stringify({ jwksUrl, audience: 'https://app.example', clockTolerance: '30s' }));
    await expect(verifyGatehouseAssertion({ headers: { 'x-auth-assertion': token } }, settings)).rejects.toThrow(/clockTolerance/);
    await expect(verifyGatehouseLogoutToken(token, { ...settings, clockTolerance: -1 })).rejects.toThrow(/clockTolerance/);
  });
});
