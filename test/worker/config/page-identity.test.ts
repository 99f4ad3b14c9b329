/**
 * The app's identity on pages: APP_LOGO_URL and APP_ACCENT are validated at
 * config load with a clear message, and reach the page (logo, accent rules, CSP img-src).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { call, makeEnv, testKey } from '../support/helpers';

const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: JSON.stringify({ keys: [testKey] }) };

function accepted(env: Record<string, unknown>) {
  const r = parseConfig({ ...base, ...env });
  if (!r.ok) throw new Error(`expected the configuration to load: ${r.error.message}`);
  return r.config;
}

function refused(env: Record<string, unknown>) {
  const r = parseConfig({ ...base, ...env });
  if (r.ok) throw new Error('expected the configuration to be refused');
  return r.error;
}

describe('APP_ACCENT', () => {
  it('takes #rrggbb (any case, stored lower case); unset or blank means the default palette', () => {
    expect(accepted({ APP_ACCENT: ' #2957C8 ' }).APP_ACCENT).toBe('#2957c8');
    expect(accepted({}).APP_ACCENT).toBeUndefined();
    expect(accepted({ APP_ACCENT: '  ' }).APP_ACCENT).toBeUndefined();
  });

  it.each(['red', '#fff', '2957c8', '#2957c8ff', '#12345g', 'rgb(0,0,0)', '#2957c8;}body{display:none'])('refuses %s, saying what it expects', (value) => {
    const error = refused({ APP_ACCENT: value });
    expect(error.setting).toBe('APP_ACCENT');
    expect(error.message).toBe('APP_ACCENT: must be a colour written #rrggbb, such as #2957c8');
  });

  it('a bad accent is the configuration 500 naming the setting, not a broken page', async () => {
    const r = await call('/auth/login', { env: makeEnv({ APP_ACCENT: 'blue' }) });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'APP_ACCENT' });
  });
});

describe('APP_LOGO_URL', () => {
  it.each(['https://cdn.example.com/brand/logo.svg', '/logo.svg', '/static/logo.png?v=2'])('takes %s', (value) => {
    expect(accepted({ APP_LOGO_URL: value }).APP_LOGO_URL).toBe(value);
  });

  it.each([
    'http://cdn.example.com/logo.svg',
    '//cdn.example.com/logo.svg',
    '/\\cdn.example.com/logo.svg',
    'javascript:alert(1)',
    'data:image/svg+xml,<svg/>',
    'logo.svg',
    '/my logo.svg',
    `https://cdn.example.com/${'a'.repeat(2100)}`,
  ])('refuses %s, saying what it expects', (value) => {
    const error = refused({ APP_LOGO_URL: value });
    expect(error.setting).toBe('APP_LOGO_URL');
    expect(error.message).toContain('must be an https URL such as https://cdn.example.com/logo.svg, or a path on the gateway such as /logo.svg');
  });
});

describe('the identity on the page', () => {
  it('an https logo: shown beside the name, and the CSP allows images from exactly its origin', async () => {
    const r = await call('/auth/login', { env: makeEnv({ APP_NAME: 'Acme Books', APP_LOGO_URL: 'https://cdn.example.com/logo.svg', APP_ACCENT: '#FFD400' }) });
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("img-src 'self' data: https://cdn.example.com;");
    expect(csp).not.toMatch(/img-src[^;]* https:[ ;]/); // not every https origin
    const html = await r.text();
    expect(html).toMatch(/<header class="brand"><img src="https:\/\/cdn.example.com\/logo.svg" alt=""[^>]*><span>Acme Books<\/span>/);
    expect(html).toContain(':root{--accent:#ffd400;--on-accent:#000000;');
  });

  it('a same-origin logo needs nothing beyond self; without a logo there is no image', async () => {
    const own = await call('/auth/login', { env: makeEnv({ APP_LOGO_URL: '/logo.svg' }) });
    expect(own.headers.get('content-security-policy')).toContain("img-src 'self' data:;");
    expect(await own.text()).toContain('<img src="/logo.svg"');
    const none = await call('/auth/login');
    expect(none.headers.get('content-security-policy')).toContain("img-src 'self' data:;");
    const html = await none.text();
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/--accent:#[0-9a-f]{6};--on-accent:#[0-9a-f]{6};--link:#[0-9a-f]{6}\}/); // no accent rules
  });
});
