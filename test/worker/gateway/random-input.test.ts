/**
 * Property-based tests (fast-check): random and mutated tokens, cookies, `return_to` values and
 * route paths thrown at the verifier and the router. Never a 500, never an accepted token the
 * test did not sign, never a redirect off our origins, never an anonymous request at a
 * protected origin.
 */
import fc from 'fast-check';
import { base64url } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/schema';
import { safeReturnTo } from '../../../src/http/return-to';
import { bearer, call, makeEnv, PUBLIC_URL, registerUser } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Characters a header value may hold (a Request with others cannot even be built). */
const headerChar = fc.integer({ min: 0x20, max: 0x7e }).map((n) => String.fromCharCode(n));
const headerString = (maxLength: number) => fc.string({ unit: headerChar, maxLength });
const b64 = (maxLength: number) => fc.string({ unit: fc.constantFrom(...B64URL), maxLength });

const ALLOWED = 'https://app.example.com';
const config = { PUBLIC_URL, ALLOWED_RETURN_ORIGINS: [ALLOWED] } as Pick<Config, 'PUBLIC_URL' | 'ALLOWED_RETURN_ORIGINS'>;
const env = makeEnv({ ALLOWED_RETURN_ORIGINS: ALLOWED });

/** A fresh client IP per request: the properties are about answers, not burst limits. */
let ipCounter = 0;
const freshIp = () => {
  ipCounter += 1;
  return { 'cf-connecting-ip': `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}` };
};

function bytes(segment: string): string {
  try {
    return base64url.decode(segment).join(',');
  } catch {
    return `invalid:${segment}`;
  }
}

/** Same JWS: identical decoded header, payload and signature bytes. */
const sameJws = (a: string, b: string) => {
  const x = a.split('.');
  const y = b.split('.');
  return x.length === 3 && y.length === 3 && x.every((s, i) => bytes(s) === bytes(y[i]!));
};

describe('the verifier under random input', () => {
  it('random bearer tokens and JWT-shaped strings: always 401 (or 400 for a malformed header), never 500', async () => {
    const tokens = fc.oneof(
      headerString(300),
      fc.tuple(b64(80), b64(200), b64(90)).map(([h, p, s]) => `${h}.${p}.${s}`),
      fc.tuple(fc.jsonValue(), fc.jsonValue()).map(([h, p]) => `${btoa(JSON.stringify(h) ?? '').replace(/=+$/, '')}.${btoa(JSON.stringify(p) ?? '').replace(/=+$/, '')}.`),
    );
    await fc.assert(
      fc.asyncProperty(tokens, fc.constantFrom('/auth/me', '/auth/verify'), async (token, path) => {
        const r = await call(path, { env, headers: { ...freshIp(), authorization: `Bearer ${token}` } });
        expect([400, 401]).toContain(r.status);
      }),
      { numRuns: 250 },
    );
  });

  it('mutated real tokens: never accepted unless the mutation left the signed bytes unchanged', async () => {
    const user = await registerUser(undefined, undefined, env);
    const token = user.access_token;
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('replace' as const), at: fc.nat({ max: token.length - 1 }), ch: fc.constantFrom(...B64URL, '.') }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat({ max: token.length - 1 }), ch: fc.constant('') }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat({ max: token.length }), ch: fc.constantFrom(...B64URL) }),
      fc.record({ kind: fc.constant('swap-segments' as const), at: fc.nat({ max: 2 }), ch: fc.constant('') }),
    );
    const apply = (t: string, m: { kind: string; at: number; ch: string }): string => {
      const at = Math.min(m.at, t.length);
      if (m.kind === 'replace') return t.slice(0, at) + m.ch + t.slice(at + 1);
      if (m.kind === 'delete') return t.slice(0, at) + t.slice(at + 1);
      if (m.kind === 'insert') return t.slice(0, at) + m.ch + t.slice(at);
      const parts = t.split('.');
      if (parts.length !== 3) return t;
      const j = (m.at + 1) % 3;
      [parts[m.at], parts[j]] = [parts[j]!, parts[m.at]!];
      return parts.join('.');
    };
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const mutated = mutations.reduce(apply, token);
        const r = await call('/auth/me', { env, headers: { ...freshIp(), ...bearer(mutated) } });
        expect(r.status).not.toBe(500);
        if (r.status === 200) {
          accepted += 1;
          expect(sameJws(mutated, token)).toBe(true);
        } else {
          expect([400, 401]).toContain(r.status);
        }
      }),
      { numRuns: 300 },
    );
    // The unmutated token is of course accepted (the property is not vacuous).
    expect((await call('/auth/me', { env, headers: bearer(token) })).status).toBe(200);
    expect(accepted).toBeLessThan(300);
  });

  it('random Cookie headers: never 500, never signed in', async () => {
    const cookieHeader = fc.oneof(
      headerString(400),
      fc.array(fc.tuple(fc.constantFrom('__Host-gatehouse', '__Secure-gatehouse-refresh', 'gatehouse', '__host-gatehouse', 'x'), headerString(100)), { maxLength: 4 }).map((pairs) =>
        pairs.map(([k, v]) => `${k}=${v}`).join('; '),
      ),
    );
    await fc.assert(
      fc.asyncProperty(cookieHeader, fc.constantFrom('/auth/me', '/auth/verify', '/auth/sessions'), async (cookie, path) => {
        const r = await call(path, { env, headers: { ...freshIp(), cookie } });
        expect([400, 401]).toContain(r.status);
      }),
      { numRuns: 250 },
    );
  });
});

describe('return_to under random input', () => {
  const tricky = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc
      .tuple(
        fc.constantFrom('', '/', '//', '\\\\', '/\\', '\\/', 'https:', 'http:', 'https://', 'javascript:', '%2f%2f', '/%2f', '/%5c', '///', ' //', '\t//', 'https:/', '.', '..', '/..'),
        fc.constantFrom('evil.com', 'gate.example.com', 'gate.example.com.evil.com', 'app.example.com', 'evil.com@gate.example.com', 'gate.example.com@evil.com', '', 'user:pw@app.example.com'),
        fc.constantFrom('', '/', '/path', '?x=1', '#frag', ':443', ':8443/x'),
      )
      .map(([a, b, c]) => a + b + c),
  );

  it('safeReturnTo only ever yields our own origin or an allowed one', () => {
    fc.assert(
      fc.property(tricky, (value) => {
        const out = safeReturnTo(value, config);
        const resolved = new URL(out, PUBLIC_URL);
        expect([PUBLIC_URL, ALLOWED]).toContain(resolved.origin);
        if (out.startsWith('/')) {
          expect(out.startsWith('//')).toBe(false);
          expect(out.startsWith('/\\')).toBe(false);
        } else {
          expect(out.startsWith(`${ALLOWED}/`)).toBe(true);
          expect(resolved.username + resolved.password).toBe('');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('the sign-in page never 500s and only embeds a safe return_to', async () => {
    await fc.assert(
      fc.asyncProperty(tricky, async (value) => {
        const r = await call(`/auth/login?return_to=${encodeURIComponent(value)}`, { env, headers: { ...freshIp(), accept: 'text/html' } });
        expect(r.status).toBe(200);
        const html = await r.text();
        const embedded = /name="return_to" value="([^"]*)"/.exec(html)?.[1];
        expect(embedded).toBeDefined();
        const decoded = embedded!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
        expect([PUBLIC_URL, ALLOWED]).toContain(new URL(decoded, PUBLIC_URL).origin);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the router under random paths', () => {
  it('never 500s, and an anonymous or forged request never reaches a protected origin', async () => {
    const app = recordingOrigin();
    const pub = recordingOrigin();
    const routes = [
      { path: '/app', origin: 'service:APP', auth: 'required' },
      { path: '/public', origin: 'service:PUB', auth: 'public' },
    ];
    const routed = makeEnv({ ROUTES: JSON.stringify(routes), APP: app, PUB: pub });
    const segment = fc.oneof(
      fc.constantFrom('app', 'APP', 'public', '..', '.', '%2e%2e', '%2E', '%2F', '%2f', '%5c', '', 'app%00', '%61pp', 'app;x', ';', 'app%2f..', '%252e%252e', 'auth', 'admin', '.well-known', 'jwks.json', 'verify'),
      fc.string({ unit: fc.constantFrom(...'abcxyz09-_.~%!$&\'()*+,;=:@'), maxLength: 12 }),
    );
    const path = fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => `/${parts.join('/')}`);
    const auth = fc.option(fc.oneof(headerString(60).map((t) => `Bearer ${t}`), headerString(60)), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(path, fc.constantFrom('GET', 'POST', 'DELETE', 'OPTIONS'), auth, async (p, method, authorization) => {
        const headers: Record<string, string> = authorization === undefined ? freshIp() : { ...freshIp(), authorization };
        // Absolute, so that a path starting with // stays a path.
        const r = await call(`${PUBLIC_URL}${p}`, { env: routed, method, headers });
        expect(r.status).toBeLessThan(500);
        expect(app.seen).toEqual([]);
      }),
      { numRuns: 300 },
    );
    // The protected origin is reachable at all (so the property above is not vacuous).
    const user = await registerUser(undefined, undefined, routed);
    expect((await call('/app/x', { env: routed, headers: bearer(user.access_token) })).status).toBe(200);
    expect(app.seen).toHaveLength(1);
  });
});
