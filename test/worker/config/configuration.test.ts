import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/load';
import { call, GOOD_PASSWORD, makeEnv, setCookies, testKey, uniqueEmail } from '../support/helpers';

const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: JSON.stringify({ keys: [testKey] }) };

function settingError(env: Record<string, unknown>) {
  const r = parseConfig(env);
  return r.ok ? null : r.error.setting;
}

describe('configuration', () => {
  it('applies DESIGN.md defaults', () => {
    const r = parseConfig(base);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({
      AUTH_PREFIX: '/auth',
      ACCESS_TOKEN_TTL: 600,
      REFRESH_TOKEN_TTL: 2_592_000,
      SESSION_MAX_AGE: 7_776_000,
      PASSWORD_LOGIN: 'enabled',
      PASSWORD_MIN_LENGTH: 12,
      REGISTRATION: 'open',
      ALLOWED_EMAIL_DOMAINS: [],
      ADMIN_EMAILS: [],
      ALLOWED_RETURN_ORIGINS: [],
      ROUTES: [],
      isDevelopment: false,
    });
    expect(parseConfig({ PUBLIC_URL: 'https://x.example', SIGNING_KEYS: base.SIGNING_KEYS }).ok).toBe(true); // ENVIRONMENT defaults to production
  });

  it('parses lists, numbers and JSON strings', () => {
    const r = parseConfig({ ...base, ADMIN_EMAILS: ' A@x.com, b@y.com ,', ACCESS_TOKEN_TTL: '300', ALLOWED_RETURN_ORIGINS: 'https://app.example.com/path' });
    expect(r.ok && r.config.ADMIN_EMAILS).toEqual(['a@x.com', 'b@y.com']);
    expect(r.ok && r.config.ACCESS_TOKEN_TTL).toBe(300);
    expect(r.ok && r.config.ALLOWED_RETURN_ORIGINS).toEqual(['https://app.example.com']);
    const keysAsObject = parseConfig({ ...base, SIGNING_KEYS: { keys: [testKey] } });
    expect(keysAsObject.ok).toBe(true);
  });

  it.each([
    [{ PUBLIC_URL: undefined }, 'PUBLIC_URL'],
    [{ SIGNING_KEYS: undefined }, 'SIGNING_KEYS'],
    [{ PUBLIC_URL: 'not a url' }, 'PUBLIC_URL'],
    [{ PUBLIC_URL: 'http://gate.example.com' }, 'PUBLIC_URL'],
    [{ ENVIRONMENT: 'staging' }, 'ENVIRONMENT'],
    [{ ACCESS_TOKEN_TTL: 'ten' }, 'ACCESS_TOKEN_TTL'],
    [{ ACCESS_TOKEN_TTL: '5' }, 'ACCESS_TOKEN_TTL'],
    [{ PASSWORD_MIN_LENGTH: '300' }, 'PASSWORD_MIN_LENGTH'],
    [{ PASSWORD_LOGIN: 'maybe' }, 'PASSWORD_LOGIN'],
    [{ REGISTRATION: 'invite' }, 'REGISTRATION'],
    [{ ALLOWED_RETURN_ORIGINS: 'javascript:alert(1)' }, 'ALLOWED_RETURN_ORIGINS'],
    [{ GITHUB_CLIENT_ID: 'only-the-id' }, 'GITHUB_CLIENT_SECRET'],
    [{ ROUTES: '[{"path":"/x"}]' }, 'ROUTES'],
    [{ ROUTES: '{not json' }, 'ROUTES'],
    // Two prefixes route matching folds together (ß folds to ss): one would be unreachable.
    [{ ROUTES: '[{"path":"/class","origin":"https://a.example","auth":"public"},{"path":"/CLAẞ","origin":"https://b.example","auth":"required"}]' }, 'ROUTES'],
    [{ ROUTES: '[{"path":"/admin","origin":"https://a.example","auth":"public"},{"path":"/ADMIN","origin":"https://b.example","auth":"required"}]' }, 'ROUTES'],
    [{ AUTH_PREFIX: 'auth' }, 'AUTH_PREFIX'],
  ])('a bad or missing setting fails closed naming it: %o', (override, setting) => {
    expect(settingError({ ...base, ...override })).toBe(setting);
  });

  it('development may run without PUBLIC_URL and SIGNING_KEYS', () => {
    const r = parseConfig({ ENVIRONMENT: 'development' });
    expect(r.ok).toBe(true);
    expect(r.ok && r.config.isDevelopment).toBe(true);
  });

  it('is parsed once per env object (once per isolate)', () => {
    const env = { ...base };
    expect(loadConfig(env)).toBe(loadConfig(env));
    expect(loadConfig({ ...base })).not.toBe(loadConfig(env));
  });

  it('every request fails closed with a 500 naming the setting and never its value', async () => {
    const secret = 'super-secret-value-123';
    for (const [env, setting] of [
      [makeEnv({ PUBLIC_URL: undefined }), 'PUBLIC_URL'],
      [makeEnv({ SIGNING_KEYS: `{"keys":[{"kty":"EC","d":"${secret}"}]}` }), 'SIGNING_KEYS'],
      [makeEnv({ SIGNING_KEYS: secret }), 'SIGNING_KEYS'],
      [makeEnv({ ACCESS_TOKEN_TTL: secret }), 'ACCESS_TOKEN_TTL'],
    ] as const) {
      for (const path of ['/auth/health', '/auth/me', '/.well-known/jwks.json', '/anything']) {
        const r = await call(path, { env });
        expect(r.status).toBe(500);
        const text = await r.text();
        expect(JSON.parse(text)).toMatchObject({ error: 'configuration_error', setting });
        expect(text).not.toContain(secret);
      }
      const login = await call('/auth/login', { env, json: { email: 'a@b.co', password: 'whatever it is' } });
      expect(login.status).toBe(500);
    }
  });

  it('development without SIGNING_KEYS generates a key in memory and works', async () => {
    const env = makeEnv({ ENVIRONMENT: 'development', SIGNING_KEYS: undefined, PUBLIC_URL: undefined });
    const jwks = await call('/.well-known/jwks.json', { env });
    expect(jwks.status).toBe(200);
    const keys = ((await jwks.json()) as { keys: { kid: string }[] }).keys;
    expect(keys).toHaveLength(1);
  });

  it('AUTH_PREFIX moves every gateway endpoint and the refresh cookie path', async () => {
    const env = makeEnv({ AUTH_PREFIX: '/gw' });
    expect((await call('/gw/health', { env })).status).toBe(200);
    const reg = await call('/gw/register', { env, json: { email: uniqueEmail(), password: GOOD_PASSWORD, session: 'cookie' } });
    expect(reg.status).toBe(201);
    expect(setCookies(reg).get('__Secure-gatehouse-refresh')!.attributes).toMatch(/Path=\/gw(;|$)/);
    const login = await call('/gw/login', { env });
    expect(await login.text()).toContain('action="/gw/login"');
    // The old prefix is no longer the gateway's: with no ROUTES it matches nothing.
    expect((await call('/auth/health', { env })).status).toBe(404);
  });
});
