/**
 * A service's X-Auth-Assertion: its claims (the client, `svc`, no person), its lifetime and
 * per-token caching; and the origin helper, which refuses it where a person is expected unless
 * the origin accepts services.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ServiceCaller } from '../../../src/env';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { verifyGatehouseAssertion } from '../../../packages/verify/src/index';
import { ASSERTION_REUSE_MARGIN_S } from '../../../src/tokens/assertion';
import { serviceAssertionFor } from '../../../src/tokens/service-assertion';
import { call, PUBLIC_URL, testKey } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { serviceClient, serviceHeaders } from '../support/service-clients';

afterEach(() => vi.restoreAllMocks());

const NOW = 1_900_000_000;
const service: ServiceCaller = { kind: 'service', clientId: 'cli_export', sessionId: 'svc:cli_export:e1', scope: 'reports:read', tokenId: 'j1', tokenExpiresAt: NOW + 600 };

describe('serviceAssertionFor', () => {
  it('names the client, svc, its scope and service session; no person; at most 60 s and never past the token', async () => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const token = await serviceAssertionFor(ring, PUBLIC_URL, service, 'https://app.example', NOW);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: testKey.kid, typ: 'JWT' });
    expect(decodeJwt(token)).toEqual({
      iss: PUBLIC_URL,
      aud: 'https://app.example',
      sub: 'cli_export',
      client_id: 'cli_export',
      svc: true,
      scope: 'reports:read',
      sid: 'svc:cli_export:e1',
      iat: NOW,
      exp: NOW + 60,
    });
    const dying = await serviceAssertionFor(ring, PUBLIC_URL, { ...service, tokenId: 'j2', tokenExpiresAt: NOW + 10 }, 'https://app.example', NOW);
    expect(decodeJwt(dying).exp).toBe(NOW + 10);
  });

  it('is reused per (token, audience) until near expiry; another token of the same service gets its own', async () => {
    const ring = await keyringFromJwks({ keys: [testKey] });
    const first = await serviceAssertionFor(ring, PUBLIC_URL, { ...service, tokenId: 'j3' }, 'aud-1', NOW);
    expect(await serviceAssertionFor(ring, PUBLIC_URL, { ...service, tokenId: 'j3' }, 'aud-1', NOW + 60 - ASSERTION_REUSE_MARGIN_S - 1)).toBe(first);
    expect(await serviceAssertionFor(ring, PUBLIC_URL, { ...service, tokenId: 'j4' }, 'aud-1', NOW)).not.toBe(first);
    expect(await serviceAssertionFor(ring, PUBLIC_URL, { ...service, tokenId: 'j3' }, 'aud-1', NOW + 60 - ASSERTION_REUSE_MARGIN_S)).not.toBe(first);
  });
});

describe('the origin helper and a service\'s assertion', () => {
  it('refuses it by default (a person is expected), returns the service with acceptServices', async () => {
    const origin = recordingOrigin();
    const env = proxyEnv([{ path: '/api', origin: 'https://app.example', auth: 'required', policy: { allow: [{ caller: ['service'] }] } }], {}, {});
    const jwks = await (await call('/.well-known/jwks.json', { env })).text();
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      if (req.url === `${PUBLIC_URL}/.well-known/jwks.json`) return new Response(jwks, { headers: { 'content-type': 'application/json' } });
      return origin.fetch(req);
    });
    const { client, secret } = await serviceClient([`${PUBLIC_URL}/api`]);
    const r = await call('/api/x', { env, headers: serviceHeaders(client.id, secret) });
    expect(r.status, await r.clone().text()).toBe(200);
    const request = new Request('https://app.example/api/x', { headers: origin.seen.at(-1)!.headers });
    const options = { jwksUrl: `${PUBLIC_URL}/.well-known/jwks.json`, audience: 'https://app.example' };

    await expect(verifyGatehouseAssertion(request, options)).rejects.toThrow(/a service's \(client credentials\), not a person's/);
    await expect(verifyGatehouseAssertion(request, { ...options, acceptServices: false })).rejects.toThrow(/not a person's/);
    const who = await verifyGatehouseAssertion(request, { ...options, acceptServices: true });
    expect(who).toMatchObject({ kind: 'service', clientId: client.id, scope: ['reports:read', 'reports:write'], sessionId: `svc:${client.id}:${client.tokenEpoch}` });
  });
});
