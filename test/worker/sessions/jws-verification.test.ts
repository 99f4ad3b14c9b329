/**
 * The hand-written JWS step of access-token verification (tokens/access-token.ts, which no
 * longer goes through jose's jwtVerify): the cases where it must agree with jose that the other
 * token suites do not reach. `typ` compared as JOSE compares it, `aud` as a list, a header or
 * payload that is JSON but not an object, a signature that is not base64url of the right
 * size, and both algorithms our keys use.
 */
import { base64url, importJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { generateSigningJwk, keyringFromJwks } from '../../../src/keys/keyring';
import { ExpiredTokenError, verifyAccessTokenUncached } from '../../../src/tokens/access-token';
import { PUBLIC_URL, testKey } from '../support/helpers';

const NOW = 1_800_000_000;
const ring = await keyringFromJwks({ keys: [testKey] });
const ctx = { keyring: ring, issuer: PUBLIC_URL, audience: PUBLIC_URL };
const privateKey = (await importJWK(testKey, 'ES256')) as CryptoKey;

const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: PUBLIC_URL,
  aud: PUBLIC_URL,
  sub: 'usr_1',
  sid: 'ses_1',
  jti: 'jti_1',
  iat: NOW,
  exp: NOW + 300,
  email: 'a@example.com',
  email_verified: true,
  roles: [],
  // Second factors add these claims; extra claims are ignored where they are not known.
  amr: ['pwd'],
  auth_time: NOW,
  ...overrides,
});

const enc = (value: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(value)));

/** Signs any header and payload JSON with our key (jose's SignJWT would refuse some of them). */
async function rawJws(header: unknown, payload: unknown): Promise<string> {
  const input = `${enc(header)}.${enc(payload)}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}

const header = { alg: 'ES256', kid: testKey.kid, typ: 'at+jwt' };

async function refusal(token: string): Promise<unknown> {
  return verifyAccessTokenUncached(ctx, token, NOW).then(
    () => 'accepted',
    (e: unknown) => (e instanceof Error && 'code' in e ? e.code : e),
  );
}

describe('verifying the JWS of an access token', () => {
  it('accepts the typ spellings JOSE treats as equal (application/ prefix, any case), refuses others', async () => {
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT', 'Application/At+Jwt']) {
      expect((await verifyAccessTokenUncached(ctx, await rawJws({ ...header, typ }, claims()), NOW)).sub).toBe('usr_1');
    }
    for (const typ of ['jwt', 'at+jwt2', 'application/jwt', 'xapplication/at+jwt']) expect(await refusal(await rawJws({ ...header, typ }, claims()))).toBe('invalid_token');
  });

  it('accepts an aud list that names us, refuses one that does not', async () => {
    expect((await verifyAccessTokenUncached(ctx, await rawJws(header, claims({ aud: ['https://other.example', PUBLIC_URL] })), NOW)).sid).toBe('ses_1');
    expect(await refusal(await rawJws(header, claims({ aud: ['https://other.example'] })))).toBe('invalid_token');
    expect(await refusal(await rawJws(header, claims({ aud: [] })))).toBe('invalid_token');
  });

  it('refuses a header or payload that is JSON but not an object, and a payload that is not JSON', async () => {
    expect(await refusal(await rawJws([header], claims()))).toBe('invalid_token');
    expect(await refusal(await rawJws(header, [claims()]))).toBe('invalid_token');
    expect(await refusal(await rawJws(header, 'a string'))).toBe('invalid_token');
    const input = `${enc(header)}.${base64url.encode(new TextEncoder().encode('{"sub":'))}`;
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, new TextEncoder().encode(input));
    expect(await refusal(`${input}.${base64url.encode(new Uint8Array(sig))}`)).toBe('invalid_token');
  });

  it('refuses a signature cut short, lengthened or of another token, and a non-number exp', async () => {
    const good = await rawJws(header, claims());
    const [h, p, s] = good.split('.');
    expect(await refusal(`${h}.${p}.${s!.slice(0, -4)}`)).toBe('invalid_token');
    expect(await refusal(`${h}.${p}.${s}AAAA`)).toBe('invalid_token');
    const other = (await rawJws(header, claims({ sub: 'usr_2' }))).split('.')[2];
    expect(await refusal(`${h}.${p}.${other}`)).toBe('invalid_token');
    expect(await refusal(await rawJws(header, claims({ exp: String(NOW + 300) })))).toBe('invalid_token');
    expect(await refusal(await rawJws(header, claims({ iat: String(NOW) })))).toBe('invalid_token');
  });

  it('tells an expired token of ours apart only when the rest of it checks out', async () => {
    const expired = claims({ iat: NOW - 4000, exp: NOW - 3600 });
    await expect(verifyAccessTokenUncached(ctx, await rawJws(header, expired), NOW)).rejects.toBeInstanceOf(ExpiredTokenError);
    // Another issuer's, or missing a required claim: not "expired", just invalid.
    await expect(verifyAccessTokenUncached(ctx, await rawJws(header, { ...expired, iss: 'https://evil.example' }), NOW)).rejects.not.toBeInstanceOf(ExpiredTokenError);
    const { sid: _sid, ...noSid } = expired;
    await expect(verifyAccessTokenUncached(ctx, await rawJws(header, noSid), NOW)).rejects.not.toBeInstanceOf(ExpiredTokenError);
  });

  it('verifies EdDSA (Ed25519) tokens of an EdDSA key as well as ES256 ones', async () => {
    const edJwk = await generateSigningJwk('EdDSA');
    const edRing = await keyringFromJwks({ keys: [edJwk, testKey] });
    const edCtx = { keyring: edRing, issuer: PUBLIC_URL, audience: PUBLIC_URL };
    const edKey = (await importJWK(edJwk, 'EdDSA')) as CryptoKey;
    const ed = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: edJwk.kid!, typ: 'at+jwt' }).sign(edKey);
    expect((await verifyAccessTokenUncached(edCtx, ed, NOW)).sub).toBe('usr_1');
    expect((await verifyAccessTokenUncached(edCtx, await rawJws(header, claims()), NOW)).sub).toBe('usr_1');
    // The EdDSA signature under the ES256 kid: refused (the key fixes the algorithm).
    const [eh, ep, es] = ed.split('.');
    const relabelled = `${enc({ alg: 'EdDSA', kid: testKey.kid, typ: 'at+jwt' })}.${ep}.${es}`;
    expect(eh).not.toBe(relabelled.split('.')[0]);
    expect(await verifyAccessTokenUncached(edCtx, relabelled, NOW).then(() => 'accepted', (e: { code?: string }) => e.code)).toBe('invalid_token');
  });
});
