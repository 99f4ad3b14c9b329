/**
 * The token endpoint's contract before any grant runs: a form body only, no caching, one way of
 * client authentication per request, RFC 6749 §5.2's error codes, and CORS for browser apps.
 */
import { describe, expect, it } from 'vitest';
import { call, makeEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { basic, exchange, postForm, signedInSession, storeCode, type GrantTokenResponse } from '../support/oauth-grants';

async function error(r: Response, status: number, code: string) {
  expect(r.status, await r.clone().text()).toBe(status);
  expect(await r.json()).toEqual({ error: code, error_description: expect.any(String) });
}

describe('the token endpoint reads', () => {
  it('only a form body: JSON is invalid_request', async () => {
    const { client, secret } = await seedClient();
    const r = await call('/auth/token', { json: { grant_type: 'refresh_token', refresh_token: 'x' }, headers: basic(client.id, secret) });
    expect(r.status).toBe(400);
    expect(await r.clone().json()).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('application/x-www-form-urlencoded') });
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('each parameter once: a repeated one is invalid_request', async () => {
    const { client, secret } = await seedClient();
    const r = await call('/auth/token', { body: 'grant_type=refresh_token&refresh_token=a&refresh_token=b', headers: { ...basic(client.id, secret), 'content-type': 'application/x-www-form-urlencoded' } });
    await error(r, 400, 'invalid_request');
  });

  it('a grant_type: none is invalid_request, an unknown one unsupported_grant_type', async () => {
    const { client, secret } = await seedClient();
    await error(await postForm('/auth/token', {}, basic(client.id, secret)), 400, 'invalid_request');
    await error(await postForm('/auth/token', { grant_type: 'password', username: 'a', password: 'b' }, basic(client.id, secret)), 400, 'unsupported_grant_type');
    await error(await postForm('/auth/token', { grant_type: 'toString' }, basic(client.id, secret)), 400, 'unsupported_grant_type');
  });

  it('a grant the client is not registered for is unauthorized_client', async () => {
    const { client, secret } = await seedClient({ grantTypes: ['authorization_code'] });
    await error(await postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }, basic(client.id, secret)), 400, 'unauthorized_client');
    await error(await postForm('/auth/token', { grant_type: 'client_credentials' }, basic(client.id, secret)), 400, 'unauthorized_client');
  });
});

describe('client authentication at the token endpoint', () => {
  it('HTTP Basic with form-urlencoded id and secret, or client_secret in the form, or a public client\'s client_id alone', async () => {
    const s = await signedInSession();
    const { client, secret } = await seedClient();
    const byBasic = await exchange(client, secret, await storeCode(s.user.id, s.sessionId, client));
    expect(byBasic.status, await byBasic.clone().text()).toBe(200);
    const code = await storeCode(s.user.id, s.sessionId, client);
    const byPost = await postForm('/auth/token', { grant_type: 'authorization_code', code: code.code, redirect_uri: client.redirectUris[0]!, code_verifier: code.verifier, client_id: client.id, client_secret: secret });
    expect(byPost.status, await byPost.clone().text()).toBe(200);
    const { client: spa } = await seedClient({ kind: 'public', authMethod: 'none' });
    const spaCode = await storeCode(s.user.id, s.sessionId, spa);
    const byNone = await postForm('/auth/token', { grant_type: 'authorization_code', code: spaCode.code, redirect_uri: spa.redirectUris[0]!, code_verifier: spaCode.verifier, client_id: spa.id });
    expect(byNone.status, await byNone.clone().text()).toBe(200);
    expect((await byNone.json<GrantTokenResponse>()).access_token).toBeDefined();
  });

  it('a secret with characters Basic must form-urlencode is read as RFC 6749 §2.3.1 says', async () => {
    const { client, secret } = await seedClient({ id: `cli_a:b+c ${Date.now()}` });
    const r = await postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }, basic(client.id, secret));
    // Authenticated: the grant itself refuses the made-up token.
    await error(r, 400, 'invalid_grant');
  });

  it('two ways at once is invalid_request', async () => {
    const { client, secret } = await seedClient();
    const r = await postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x', client_id: client.id, client_secret: secret }, basic(client.id, secret));
    await error(r, 400, 'invalid_request');
  });

  it('a wrong secret, an unknown or disabled client, a confidential client without its secret: invalid_client, 401 with a Basic challenge', async () => {
    const { client, secret } = await seedClient();
    const { client: disabled, secret: disabledSecret } = await seedClient({ disabledAt: 1 });
    const attempts = [
      postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }, basic(client.id, `${secret}x`)),
      postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }, basic('cli_unknown', secret)),
      postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }, basic(disabled.id, disabledSecret)),
      postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x', client_id: client.id }),
      postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }),
      postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: 'Basic %%%' }),
    ];
    for (const r of await Promise.all(attempts)) {
      await error(r, 401, 'invalid_client');
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="https://gate.example.com"');
    }
  });
});

describe('the token endpoint answers', () => {
  it('any origin\'s CORS preflight and request, without credentials', async () => {
    const preflight = await call('/auth/token', { method: 'OPTIONS', headers: { origin: 'https://spa.example.net', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    const r = await postForm('/auth/token', { grant_type: 'refresh_token', refresh_token: 'x', client_id: 'cli_x' }, { origin: 'https://spa.example.net' });
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const introspect = await call('/auth/introspect', { method: 'OPTIONS', headers: { origin: 'https://spa.example.net', 'access-control-request-method': 'POST' } });
    expect(introspect.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('within the client IP\'s rate limit, counted with refreshes: over it, 429 before any client is looked up', async () => {
    const keys: string[] = [];
    const env = makeEnv({ RATE_LIMITER: { limit: async (o: { key: string }) => ({ success: keys.push(o.key) <= 1 }) } });
    const { client, secret } = await seedClient();
    const form = { grant_type: 'refresh_token', refresh_token: 'x' };
    await error(await postForm('/auth/token', form, { ...basic(client.id, secret), 'cf-connecting-ip': '198.51.100.20' }, env), 400, 'invalid_grant');
    for (const path of ['/auth/token', '/auth/revoke', '/auth/introspect']) {
      await error(await postForm(path, { ...form, token: 'x' }, { ...basic(client.id, secret), 'cf-connecting-ip': '198.51.100.20' }, env), 429, 'rate_limited');
    }
    expect(keys).toEqual(Array(4).fill('refresh:198.51.100.20'));
  });
});
