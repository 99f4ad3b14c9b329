/**
 * The worker tests run with exactly the settings vitest.config.ts and the helpers give them: a
 * developer's .dev.vars (or .env) must not add any (CI runs the suite with an odd one present).
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';

describe('the test environment', () => {
  it('holds only the settings vitest.config.ts gives, whatever .dev.vars says', () => {
    // String bindings are settings; the pool adds one of its own (__VITEST_POOL_WORKERS_...).
    const settings = Object.fromEntries(Object.entries(env).filter(([name, value]) => typeof value === 'string' && !name.startsWith('__VITEST_POOL_WORKERS')));
    // SIGNING_KEYS: a key made for this run, so the sessions object (whose env is this one, not
    // the env a test hands to fetch) can sign logout tokens; its kid names it.
    const { SIGNING_KEYS: keys, ...rest } = settings;
    expect(rest).toEqual({ ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com' });
    expect(JSON.parse(String(keys)).keys.map((k: { kid: string }) => k.kid)).toEqual(['test-object-key']);
  });
});
