/**
 * Unit and integration tests, run inside workerd by Cloudflare's Vitest integration against
 * real local D1 and KV (isolated per test file). End-to-end tests have their own config.
 */
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig(async () => {
  const migrations = await readD1Migrations('migrations');
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: './wrangler.toml' },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            ENVIRONMENT: 'production',
            PUBLIC_URL: 'https://gate.example.com',
          },
        },
      }),
    ],
    test: {
      include: ['test/worker/**/*.test.{ts,tsx}'],
      setupFiles: ['./test/worker/setup.ts'],
      testTimeout: 30_000,
    },
  };
});
