/**
 * Settings errors name the right unit, and a bad configuration is answered and logged by one
 * loader: the same 500 everywhere, logged once per isolate rather than once per request.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { call, makeEnv, testKey } from '../support/helpers';

const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: JSON.stringify({ keys: [testKey] }) };

function failure(env: Record<string, unknown>) {
  const r = parseConfig(env);
  if (r.ok) throw new Error('expected the configuration to be refused');
  return r.error;
}

afterEach(() => vi.restoreAllMocks());

describe('integer settings', () => {
  it.each(['twelve', '12.5'])('a bad PASSWORD_MIN_LENGTH (%s) asks for a whole number of characters, not seconds', (value) => {
    const error = failure({ ...base, PASSWORD_MIN_LENGTH: value });
    expect(error.setting).toBe('PASSWORD_MIN_LENGTH');
    expect(error.message).toContain('whole number of characters');
    expect(error.message).not.toContain('seconds');
  });

  it('a bad duration still asks for seconds', () => {
    expect(failure({ ...base, ACCESS_TOKEN_TTL: 'ten' }).message).toContain('whole number of seconds');
    expect(failure({ ...base, AUDIT_RETENTION_DAYS: '1.5' }).message).toContain('whole number of days');
  });

  it('the 500 names the unit too', async () => {
    const r = await call('/auth/health', { env: makeEnv({ PASSWORD_MIN_LENGTH: 'twelve' }) });
    expect(r.status).toBe(500);
    const body = (await r.json()) as { error: string; setting: string; error_description: string };
    expect(body).toMatchObject({ error: 'configuration_error', setting: 'PASSWORD_MIN_LENGTH' });
    expect(body.error_description).toContain('whole number of characters');
  });
});

describe('a bad configuration', () => {
  const logged = (spy: { mock: { calls: unknown[][] } }, event: string) =>
    spy.mock.calls.filter(([line]) => typeof line === 'string' && JSON.parse(line).event === event).length;

  it('is logged once per isolate, however many requests it refuses', async () => {
    const error = vi.spyOn(console, 'error');
    const env = makeEnv({ ACCESS_TOKEN_TTL: 'ten' });
    for (const path of ['/auth/health', '/auth/me', '/anything']) {
      const r = await call(path, { env });
      expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'ACCESS_TOKEN_TTL' });
    }
    expect(logged(error, 'configuration_invalid')).toBe(1);
  });

  it('a key set that does not import answers the same 500, logged once', async () => {
    const error = vi.spyOn(console, 'error');
    const env = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: 'x', alg: 'ES256' }] }) });
    for (const path of ['/auth/health', '/.well-known/jwks.json']) {
      const r = await call(path, { env });
      expect(r.status).toBe(500);
      expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'SIGNING_KEYS' });
    }
    expect(logged(error, 'configuration_invalid')).toBe(1);
  });
});

describe('a bad configuration, met by a browser', () => {
  const secret = 'super-secret-value-123';
  const html = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };

  it.each([
    ['a setting that does not parse', { ACCESS_TOKEN_TTL: secret }, 'ACCESS_TOKEN_TTL'],
    ['a key set that does not import', { SIGNING_KEYS: JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: secret, alg: 'ES256' }] }) }, 'SIGNING_KEYS'],
  ])('%s: a navigation gets a plain HTML page with the JSON message, the same status, no secret', async (_, override, setting) => {
    const env = makeEnv(override);
    const json = await call('/auth/login', { env });
    const { error_description } = (await json.json()) as { error_description: string };
    expect(error_description).toContain(setting);
    for (const path of ['/auth/login', '/somewhere/else']) {
      const r = await call(path, { env, headers: html });
      expect(r.status).toBe(500);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
      expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
      const text = await r.text();
      expect(text).toMatch(/^<!doctype html>/i);
      expect(text).toContain(error_description.replace(/"/g, '&#34;').replace(/'/g, '&#39;'));
      expect(text).toContain('configuration_error');
      expect(text).not.toContain(secret);
      expect(text).not.toContain('"error"');
    }
  });

  it('API clients keep the JSON: no Accept: text/html, or a fetch() that is not a navigation', async () => {
    const env = makeEnv({ ACCESS_TOKEN_TTL: 'ten' });
    const clients: Record<string, string>[] = [{ accept: 'application/json' }, {}, { accept: 'text/html', 'sec-fetch-mode': 'cors' }];
    for (const headers of clients) {
      const r = await call('/auth/health', { env, headers });
      expect(r.status).toBe(500);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'ACCESS_TOKEN_TTL' });
    }
  });
});
