/**
 * Every kind of bad access token, forged with jose: each gets 401 invalid_token, never a
 * 500, and changes nothing in D1 or KV.
 */
import { base64url, exportJWK, SignJWT, importJWK, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, foreignKey, makeEnv, PUBLIC_URL, registerUser, stateSnapshot, testKey } from '../support/helpers';

const privateKey = async () => (await importJWK(testKey, 'ES256')) as CryptoKey;
const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: Record<string, unknown> = {}) {
  return {
    iss: PUBLIC_URL,
    aud: PUBLIC_URL,
    sub: 'usr_forged',
    sid: 'ses_forged',
    jti: crypto.randomUUID(),
    iat: now(),
    exp: now() + 300,
    email: 'forged@example.com',
    email_verified: true,
    roles: ['admin'],
    amr: ['pwd'],
    auth_time: now(),
    ...overrides,
  };
}

async function sign(payload: Record<string, unknown>, header: Record<string, unknown> = {}, key?: CryptoKey | Uint8Array) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: testKey.kid, typ: 'at+jwt', ...header } as never)
    .sign(key ?? (await privateKey()));
}

function unsigned(header: object, payload: object, signature = '') {
  const enc = (o: object) => base64url.encode(new TextEncoder().encode(JSON.stringify(o)));
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

async function expectRefused(token: string, headers?: Record<string, string>) {
  const before = await stateSnapshot();
  const r = await call('/auth/me', { headers: headers ?? bearer(token) });
  expect(r.status).toBe(401);
  const body = (await r.json()) as { error: string };
  expect(body.error).toBe('invalid_token');
  expect(r.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  expect(await stateSnapshot()).toEqual(before);
}

describe('access token verification', () => {
  it('accepts a real token: header typ at+jwt, kid, and all DESIGN.md claims', async () => {
    const t = await registerUser();
    const [h, p] = t.access_token.split('.').slice(0, 2).map((s) => JSON.parse(new TextDecoder().decode(base64url.decode(s))));
    expect(h).toEqual({ alg: 'ES256', kid: testKey.kid, typ: 'at+jwt' });
    expect(Object.keys(p).sort()).toEqual(['amr', 'aud', 'auth_time', 'email', 'email_verified', 'exp', 'iat', 'iss', 'jti', 'roles', 'sid', 'sub']);
    expect(p.iss).toBe(PUBLIC_URL);
    expect(p.aud).toBe(PUBLIC_URL);
    expect(p.exp - p.iat).toBe(600);
    expect((await call('/auth/me', { headers: bearer(t.access_token) })).status).toBe(200);
  });

  it('refuses a missing token with a login hint', async () => {
    const r = await call('/auth/me');
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('refuses garbage and oversized tokens', async () => {
    for (const t of ['garbage', 'a.b', 'a.b.c', '...', '%E2.%82.%AC', `${'a'.repeat(5000)}.b.c`, 'eyJhbGciOiJFUzI1NiJ9.e30.']) await expectRefused(t);
    await expectRefused('', { authorization: 'Bearer' });
    await expectRefused('', { authorization: 'Basic dXNlcjpwYXNz' });
    await expectRefused('', { authorization: `Bearer ${'x'.repeat(70_000)}` });
  });

  it('refuses alg none', async () => {
    await expectRefused(unsigned({ alg: 'none', typ: 'at+jwt', kid: testKey.kid }, claims()));
    await expectRefused(unsigned({ alg: 'none', typ: 'at+jwt', kid: testKey.kid }, claims(), 'AAAA'));
  });

  it('refuses HS256 tokens keyed with the public key (algorithm confusion)', async () => {
    const pub = { kty: testKey.kty, crv: testKey.crv, x: testKey.x, y: testKey.y } as JWK;
    for (const secret of [JSON.stringify(pub), JSON.stringify({ keys: [pub] }), pub.x!]) {
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: testKey.kid, typ: 'at+jwt' }).sign(new TextEncoder().encode(secret));
      await expectRefused(token);
    }
  });

  it('refuses tokens that bring their own key (jwk, jku, x5u) and unknown kids', async () => {
    const foreign = await foreignKey();
    await expectRefused(await sign(claims(), { jwk: foreign.publicJwk }, foreign.privateKey));
    await expectRefused(await sign(claims(), { jwk: foreign.publicJwk, kid: undefined }, foreign.privateKey));
    await expectRefused(await sign(claims(), { jku: 'https://evil.example/jwks.json' }, foreign.privateKey));
    await expectRefused(await sign(claims(), { x5u: 'https://evil.example/cert.pem' }, foreign.privateKey));
    await expectRefused(await sign(claims(), { kid: 'unknown-kid' }, foreign.privateKey));
    await expectRefused(await sign(claims(), { kid: 'unknown-kid' }));
    // Even with our own key, a jku header is refused: key material named in a token is never trusted.
    await expectRefused(await sign(claims(), { jku: `${PUBLIC_URL}/.well-known/jwks.json` }));
  });

  it('refuses a token signed by another key under our kid', async () => {
    const foreign = await foreignKey();
    await expectRefused(await sign(claims(), {}, foreign.privateKey));
  });

  it('refuses EdDSA when our key is ES256 (algorithm pinned)', async () => {
    const ed = await foreignKey('EdDSA');
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: testKey.kid, typ: 'at+jwt' }).sign(ed.privateKey);
    await expectRefused(token);
  });

  it('refuses expired, not-yet-valid, future-issued, foreign-issuer and foreign-audience tokens', async () => {
    await expectRefused(await sign(claims({ iat: now() - 1000, exp: now() - 100 })));
    await expectRefused(await sign(claims({ nbf: now() + 600 })));
    await expectRefused(await sign(claims({ iat: now() + 3600, exp: now() + 4000 })));
    await expectRefused(await sign(claims({ iss: 'https://evil.example.com' })));
    await expectRefused(await sign(claims({ aud: 'https://other.example.com' })));
    await expectRefused(await sign(claims({ aud: ['https://other.example.com'] })));
  });

  it('refuses a wrong typ and tokens missing any required claim', async () => {
    await expectRefused(await sign(claims(), { typ: 'JWT' }));
    await expectRefused(await sign(claims(), { typ: undefined }));
    for (const missing of ['exp', 'iat', 'sub', 'jti', 'sid']) {
      const c = claims();
      delete (c as Record<string, unknown>)[missing];
      await expectRefused(await sign(c));
    }
    await expectRefused(await sign(claims({ roles: 'admin' })));
    await expectRefused(await sign(claims({ sub: 42 })));
  });

  it('refuses a tampered payload and a crit header', async () => {
    const t = await registerUser();
    const [h, , s] = t.access_token.split('.');
    const p = base64url.encode(new TextEncoder().encode(JSON.stringify(claims({ roles: ['admin'] }))));
    await expectRefused(`${h}.${p}.${s}`);
    // jose will not even sign an unknown crit extension, so sign the bytes with WebCrypto.
    const enc = (o: object) => base64url.encode(new TextEncoder().encode(JSON.stringify(o)));
    const input = `${enc({ alg: 'ES256', kid: testKey.kid, typ: 'at+jwt', crit: ['x-gatehouse'], 'x-gatehouse': 1 })}.${enc(claims())}`;
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, await privateKey(), new TextEncoder().encode(input));
    const jws = `${input}.${base64url.encode(new Uint8Array(sig))}`;
    await expectRefused(jws);
    // The same construction without crit is accepted, so the refusal above is about crit.
    const okInput = `${enc({ alg: 'ES256', kid: testKey.kid, typ: 'at+jwt' })}.${enc(claims({ sub: t.user.id, sid: 'ses_x' }))}`;
    const okSig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, await privateKey(), new TextEncoder().encode(okInput));
    const me = await call('/auth/me', { headers: bearer(`${okInput}.${base64url.encode(new Uint8Array(okSig))}`) });
    // Verifies, then /me finds no such session: still 401, but past the signature check.
    expect(me.status).toBe(401);
    expect(((await me.json()) as { error_description: string }).error_description).toBe('The session has ended.');
  });

  it('never reads a token from the URL', async () => {
    const t = await registerUser();
    const r = await call(`/auth/me?access_token=${t.access_token}&token=${t.access_token}`);
    expect(r.status).toBe(401);
  });

  it('accepts tokens only from this gateway configuration (other PUBLIC_URL refuses)', async () => {
    const t = await registerUser();
    const other = makeEnv({ PUBLIC_URL: 'https://other-gate.example.com' });
    const r = await call('/auth/me', { env: other, headers: bearer(t.access_token) });
    expect(r.status).toBe(401);
  });

  it('refuses an EC key exported as a public JWK posing as SIGNING_KEYS (config error, not a 500 leak)', async () => {
    const pub = await exportJWK((await foreignKey()).publicKey);
    const r = await call('/auth/health', { env: makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [pub] }) }) });
    expect(r.status).toBe(500);
    const body = (await r.json()) as { error: string; setting: string; error_description: string };
    expect(body).toMatchObject({ error: 'configuration_error', setting: 'SIGNING_KEYS' });
    expect(body.error_description).not.toContain(pub.x!);
  });
});
