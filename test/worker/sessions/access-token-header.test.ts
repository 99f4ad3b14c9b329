/**
 * An access token whose protected header carries anything besides `alg`,
 * `kid` and `typ` is refused, even when the real key signed it.
 */
import { base64url, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, PUBLIC_URL, registerUser, testKey } from '../support/helpers';
import { proxyEnv } from '../support/proxy-helpers';

const env = proxyEnv([{ path: '/app', origin: 'https://app.internal.example', auth: 'required' }]);
const now = () => Math.floor(Date.now() / 1000);
const enc = (o: object) => base64url.encode(new TextEncoder().encode(JSON.stringify(o)));

/** Signs the bytes with WebCrypto: jose will not put every header parameter into a JWS. */
async function signWithRealKey(header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const key = (await importJWK(testKey, 'ES256')) as CryptoKey;
  const input = `${enc(header)}.${enc(payload)}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}

describe('JWS header parameters of access tokens', () => {
  it('refuses a header parameter other than alg, kid, typ (zip, cty, b64, private names) with invalid_token', async () => {
    const user = await registerUser(undefined, undefined, env);
    const [, body] = user.access_token.split('.');
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(body!))) as Record<string, unknown>;
    const payload = { ...claims, jti: `hdr-${now()}` };
    const header = { alg: 'ES256', kid: testKey.kid, typ: 'at+jwt' };

    // The control: the same construction with only alg, kid, typ passes forward-auth.
    const good = await signWithRealKey(header, payload);
    expect((await call('/auth/verify', { env, headers: { ...bearer(good), 'x-original-uri': '/app/x' } })).status).toBe(200);

    for (const extra of [{ zip: 'DEF' }, { cty: 'JWT' }, { b64: true }, { 'x-gatehouse': 1 }, { iss: PUBLIC_URL }, { url: PUBLIC_URL }]) {
      const token = await signWithRealKey({ ...header, ...extra }, { ...payload, jti: crypto.randomUUID() });
      const name = Object.keys(extra)[0]!;
      for (const path of ['/auth/verify', '/auth/me', '/app/x']) {
        const r = await call(path, { env, headers: { ...bearer(token), 'x-original-uri': '/app/x', accept: 'application/json' } });
        expect(r.status, `${name} at ${path}`).toBe(401);
        expect(((await r.json()) as { error: string }).error, `${name} at ${path}`).toBe('invalid_token');
      }
    }
  });
});
