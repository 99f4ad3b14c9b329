/// <reference types="vite/client" />
/** Which providers are on: credentials enable them, the login page lists them, `dev` is development only. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { enabledProviders, findProvider } from '../../../src/providers/registry';
import { call, makeEnv } from '../support/helpers';

function config(overrides: Record<string, unknown>) {
  const result = parseConfig({ ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: '{"keys":[]}', ...overrides });
  if (!result.ok) throw result.error;
  return result.config;
}

describe('provider registry', () => {
  it('enables a provider only when its credentials are set, in a fixed order', () => {
    expect(enabledProviders(config({}))).toEqual([]);
    const all = config({
      GITHUB_CLIENT_ID: 'a',
      GITHUB_CLIENT_SECRET: 'b',
      GOOGLE_CLIENT_ID: 'c',
      GOOGLE_CLIENT_SECRET: 'd',
      GITLAB_CLIENT_ID: 'e',
      GITLAB_CLIENT_SECRET: 'f',
      OIDC_ISSUER: 'https://sso.example.com',
      OIDC_CLIENT_ID: 'g',
      OIDC_NAME: 'Acme SSO',
    });
    expect(enabledProviders(all)).toEqual([
      { id: 'github', name: 'GitHub' },
      { id: 'google', name: 'Google' },
      { id: 'gitlab', name: 'GitLab' },
      { id: 'oidc', name: 'Acme SSO' },
    ]);
    expect(findProvider(all, 'gitlab')).toMatchObject({ protocol: 'oidc', issuer: 'https://gitlab.com', scopes: ['openid', 'email', 'profile'] });
    expect(findProvider(all, 'nope')).toBeNull();
  });

  it('offers the dev provider in development only, and refuses DEV_OIDC_ISSUER in production', () => {
    const dev = config({ ENVIRONMENT: 'development', DEV_OIDC_ISSUER: 'http://localhost:8788' });
    expect(enabledProviders(dev)).toEqual([{ id: 'dev', name: 'Dev sign-in' }]);
    const prod = parseConfig({ ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: '{"keys":[]}', DEV_OIDC_ISSUER: 'http://localhost:8788' });
    expect(prod.ok).toBe(false);
    expect(!prod.ok && prod.error.setting).toBe('DEV_OIDC_ISSUER');
  });

  it('requires a TOKEN_ENCRYPTION_KEY of 32+ characters to keep provider tokens', () => {
    const missing = parseConfig({ ENVIRONMENT: 'development', STORE_PROVIDER_TOKENS: 'true' });
    expect(!missing.ok && missing.error.setting).toBe('TOKEN_ENCRYPTION_KEY');
    const short = parseConfig({ ENVIRONMENT: 'development', STORE_PROVIDER_TOKENS: 'true', TOKEN_ENCRYPTION_KEY: 'short' });
    expect(!short.ok && short.error.setting).toBe('TOKEN_ENCRYPTION_KEY');
  });
});

describe('GET /auth/login with providers', () => {
  it('shows one button per enabled provider, carrying return_to, escaped', async () => {
    const e = makeEnv({ GITHUB_CLIENT_ID: 'a', GITHUB_CLIENT_SECRET: 'b', OIDC_ISSUER: 'https://sso.example.com', OIDC_CLIENT_ID: 'g', OIDC_NAME: 'Acme <SSO>' });
    const r = await call('/auth/login?return_to=%2Fapp%3Fx%3D1', { env: e });
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('href="/auth/login/github?return_to=%2Fapp%3Fx%3D1"');
    expect(html).toContain('href="/auth/login/oidc?return_to=%2Fapp%3Fx%3D1"');
    expect(html).toContain('Continue with GitHub');
    expect(html).toContain('Continue with Acme &lt;SSO&gt;');
    expect(html).not.toContain('Dev sign-in');
  });

  it('production with DEV_OIDC_ISSUER set fails closed naming the setting', async () => {
    const r = await call('/auth/login/dev', { env: makeEnv({ DEV_OIDC_ISSUER: 'http://localhost:8788' }) });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'DEV_OIDC_ISSUER' });
  });
});

describe('the provider module boundary', () => {
  // Source text of every module, bundled by Vite at test build time.
  const sources = import.meta.glob('../../../src/**/*.{ts,tsx}', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

  it('imports arctic in src/providers/arctic-client.ts only, which exports none of its types', () => {
    const importers = Object.entries(sources)
      .filter(([, text]) => /from ['"]arctic['"]/.test(text))
      .map(([path]) => path.replace('../../../', ''));
    expect(importers).toEqual(['src/providers/arctic-client.ts']);
    const text = sources['../../../src/providers/arctic-client.ts']!;
    expect(text).not.toMatch(/export\s+(type\s+)?\{[^}]*\b(OAuth2Tokens|OAuth2Client|OAuth2RequestError|ArcticFetchError)\b/);
    expect(text).not.toMatch(/export .*from ['"]arctic['"]/);
  });
});

describe('the provider error page', () => {
  it('is HTML with the page’s own strict nonce CSP (one policy, no inline scripts)', async () => {
    const r = await call('/auth/login/nope', { env: makeEnv() });
    expect(r.status).toBe(404);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toMatch(/^default-src 'none'; style-src 'nonce-[A-Za-z0-9_-]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await r.text();
    const nonce = /'nonce-([^']+)'/.exec(csp)![1];
    expect(html).toContain(`<style nonce="${nonce}">`);
    expect(csp).toContain(`script-src 'nonce-${nonce}'`);
    expect(html.match(/<script[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(html).toContain('href="/auth/login"');
  });
});
