/**
 * The authorization server's metadata: OpenID Connect Discovery and RFC 8414, served by the
 * gateway on its own host (even with a route on `/`), public and cacheable for a few minutes;
 * on an app host the same paths stay the origin's.
 */
import { describe, expect, it } from 'vitest';
import { call, makeEnv, PUBLIC_URL } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';
import { loadConfig } from '../../../src/config/load';
import type { Config } from '../../../src/config/schema';
import { discoveryDocument } from '../../../src/routes/oauth-discovery';

const PATHS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];

describe('discovery documents', () => {
  it('both paths serve one document naming every endpoint and what the server supports', async () => {
    const e = makeEnv();
    for (const path of PATHS) {
      const r = await call(path, { env: e });
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('public, max-age=300');
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      const doc = (await r.json()) as Record<string, unknown>;
      expect(doc).toMatchObject({
        issuer: PUBLIC_URL,
        authorization_endpoint: `${PUBLIC_URL}/auth/authorize`,
        token_endpoint: `${PUBLIC_URL}/auth/token`,
        userinfo_endpoint: `${PUBLIC_URL}/auth/userinfo`,
        jwks_uri: `${PUBLIC_URL}/.well-known/jwks.json`,
        revocation_endpoint: `${PUBLIC_URL}/auth/revoke`,
        introspection_endpoint: `${PUBLIC_URL}/auth/introspect`,
        end_session_endpoint: `${PUBLIC_URL}/auth/end-session`,
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
        id_token_signing_alg_values_supported: ['ES256'],
        subject_types_supported: ['public'],
        prompt_values_supported: ['none', 'login', 'consent'],
        acr_values_supported: ['mfa', 'passkey'],
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        authorization_response_iss_parameter_supported: true,
      });
      // Metadata documents follow registration by default: off here.
      expect(doc).not.toHaveProperty('client_id_metadata_document_supported');
      // Exactly the claims the ID token and userinfo can carry: none that nothing returns.
      expect([...(doc.claims_supported as string[])].sort()).toEqual(['amr', 'at_hash', 'aud', 'auth_time', 'email', 'email_verified', 'exp', 'iat', 'iss', 'nonce', 'sid', 'sub']);
      // Registration is off unless DYNAMIC_CLIENT_REGISTRATION=open.
      expect(doc).not.toHaveProperty('registration_endpoint');
    }
  });

  it('names the registration endpoint once DYNAMIC_CLIENT_REGISTRATION is open', () => {
    const loaded = loadConfig(makeEnv());
    if (!loaded.ok) throw loaded.error;
    const open = discoveryDocument({ ...loaded.config, DYNAMIC_CLIENT_REGISTRATION: 'open' });
    expect(open.client_id_metadata_document_supported).toBe(true);
    expect(open.registration_endpoint).toBe(`${PUBLIC_URL}/auth/oauth/register`);
    const off = discoveryDocument({ ...loaded.config, DYNAMIC_CLIENT_REGISTRATION: 'off' });
    expect(off).not.toHaveProperty('registration_endpoint');
  });

  it('the prefix is the configured one', async () => {
    const doc = (await (await call(PATHS[0]!, { env: makeEnv({ AUTH_PREFIX: '/sso-gate' }) })).json()) as Record<string, string>;
    expect(doc.authorization_endpoint).toBe(`${PUBLIC_URL}/sso-gate/authorize`);
  });

  it('other methods are refused (405); only these two paths are the gateway’s', async () => {
    const r = await call(PATHS[0]!, { env: makeEnv(), method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(405);
  });

  it('with a route on /, the gateway host still answers them itself; on an app host they are the origin’s', async () => {
    const root = recordingOrigin(() => new Response('{"issuer":"origin"}', { headers: { 'content-type': 'application/json' } }));
    const app = recordingOrigin(() => new Response('{"issuer":"app"}', { headers: { 'content-type': 'application/json' } }));
    const e = proxyEnv(
      [
        { path: '/', origin: 'service:ROOT', auth: 'public' },
        { host: 'app.example.com', path: '/', origin: 'service:APP', auth: 'public' },
      ],
      { ROOT: root, APP: app },
    );
    for (const path of PATHS) {
      const own = (await (await call(path, { env: e })).json()) as Record<string, string>;
      expect(own.issuer).toBe(PUBLIC_URL);
      const there = await call(`https://app.example.com${path}`, { env: e });
      expect(await there.text()).toBe('{"issuer":"app"}');
    }
    expect(root.seen).toHaveLength(0);
    expect(app.seen).toHaveLength(2);
  });
});
