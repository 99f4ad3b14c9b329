/**
 * Signing-key rotation end to end, as the README's steps do it: (1) add the new key first and
 * keep the old one, (2) wait the longest access-token lifetime, (3) drop the old key. Sessions
 * survive every step; only access tokens are tied to a key, and refresh replaces them.
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, importJWK, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { generateSigningJwk } from '../../../src/keys/keyring';
import { bearer, call, makeEnv, PUBLIC_URL, registerUser, type TestEnv, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

const keysEnv = (keys: JWK[], extra: Record<string, unknown> = {}): TestEnv => makeEnv({ SIGNING_KEYS: JSON.stringify({ keys }), ...extra });

async function jwks(env: TestEnv): Promise<{ keys: JWK[] }> {
  return (await call('/.well-known/jwks.json', { env })).json();
}

describe('key rotation, end to end', () => {
  it('old tokens stay valid while both keys are published, new tokens use the new key, and a removed key is refused; sessions survive', async () => {
    const oldKey = await generateSigningJwk('ES256');
    const newKey = await generateSigningJwk('EdDSA');
    const origin = recordingOrigin();
    const routes = JSON.stringify([{ path: '/app', origin: 'service:APP', auth: 'required', audience: 'https://app.example.com' }]);
    const step0 = keysEnv([oldKey], { ROUTES: routes, APP: origin });
    const step1 = keysEnv([newKey, oldKey], { ROUTES: routes, APP: origin });
    const step3 = keysEnv([newKey], { ROUTES: routes, APP: origin });

    // Before: a user signs in; the token names the old key.
    const user = await registerUser(undefined, undefined, step0);
    expect(decodeProtectedHeader(user.access_token).kid).toBe(oldKey.kid);
    expect((await jwks(step0)).keys.map((k) => k.kid)).toEqual([oldKey.kid]);

    // Step 1: the new key is prepended. Both are published, public parts only.
    const published = await jwks(step1);
    expect(published.keys.map((k) => k.kid)).toEqual([newKey.kid, oldKey.kid]);
    expect(published.keys.some((k) => 'd' in k)).toBe(false);
    // The old token still works everywhere: status, forward-auth, and the proxy.
    expect((await call('/auth/me', { env: step1, headers: bearer(user.access_token) })).status).toBe(200);
    expect((await call('/auth/verify', { env: step1, headers: bearer(user.access_token) })).status).toBe(200);
    const proxied = await call('/app/page', { env: step1, headers: bearer(user.access_token) });
    expect(proxied.status).toBe(200);
    // ... and what the origin receives is signed with the new key, verifiable from the JWKS.
    const assertion = origin.seen.at(-1)!.headers['x-auth-assertion']!;
    const verified = await jwtVerify(assertion, createLocalJWKSet(published as never), { issuer: PUBLIC_URL, audience: 'https://app.example.com' });
    expect(verified.protectedHeader.kid).toBe(newKey.kid);
    expect(verified.payload.sub).toBe(user.user.id);

    // Refresh during step 1 issues a token under the new key, for the same session.
    const refreshed = await (await call('/auth/refresh', { env: step1, json: { refresh_token: user.refresh_token } })).json<TokenResponse>();
    expect(decodeProtectedHeader(refreshed.access_token).kid).toBe(newKey.kid);
    const sid = (t: string) => decodeJwt(t).sid;
    expect(sid(refreshed.access_token)).toBe(sid(user.access_token));

    // Step 3: the old key is dropped. Its tokens are refused everywhere; the origin sees nothing.
    const seenBefore = origin.seen.length;
    const refused = await call('/auth/me', { env: step3, headers: bearer(user.access_token) });
    expect(refused.status).toBe(401);
    expect((await refused.json<{ error: string }>()).error).toBe('invalid_token');
    expect((await call('/auth/verify', { env: step3, headers: bearer(user.access_token) })).status).toBe(401);
    expect((await call('/app/page', { env: step3, headers: bearer(user.access_token) })).status).toBe(401);
    expect(origin.seen.length).toBe(seenBefore);
    expect((await jwks(step3)).keys.map((k) => k.kid)).toEqual([newKey.kid]);
    // The session itself is not tied to a key: the new-key token works, and refresh continues.
    expect((await call('/auth/me', { env: step3, headers: bearer(refreshed.access_token) })).status).toBe(200);
    const again = await call('/auth/refresh', { env: step3, json: { refresh_token: refreshed.refresh_token } });
    expect(again.status).toBe(200);
  });

  it('a token naming a published kid but signed by another key is refused, before and after rotation', async () => {
    const oldKey = await generateSigningJwk('ES256');
    const newKey = await generateSigningJwk('ES256');
    const impostor = await generateSigningJwk('ES256');
    const env = keysEnv([newKey, oldKey]);
    const user = await registerUser(undefined, undefined, env);
    const claims = decodeJwt(user.access_token);
    for (const kid of [oldKey.kid, newKey.kid]) {
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .sign(await importJWK(impostor, 'ES256'));
      expect((await call('/auth/me', { env, headers: bearer(forged) })).status).toBe(401);
    }
  });

  it('the rotation keeps one algorithm pinned per key: an EdDSA kid with an ES256 header is refused', async () => {
    const ed = await generateSigningJwk('EdDSA');
    const ec = await generateSigningJwk('ES256');
    const env = keysEnv([ed, ec]);
    const user = await registerUser(undefined, undefined, env);
    const claims = decodeJwt(user.access_token);
    // Signed by the real EC key but claiming to be the EdDSA kid.
    const mixed = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: ed.kid, typ: 'at+jwt' }).sign(await importJWK(ec, 'ES256'));
    expect((await call('/auth/me', { env, headers: bearer(mixed) })).status).toBe(401);
  });
});
