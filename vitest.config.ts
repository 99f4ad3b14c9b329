/**
 * `npm test` runs two projects:
 * - worker: unit and integration tests inside workerd (Cloudflare's Vitest integration) with
 *   real local D1 and KV, isolated per test file;
 * - e2e: Node-side tests that drive a real `wrangler dev`, real local peers (an OpenID Connect
 *   server, origins, nginx) and a real Chromium.
 */
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig(async () => {
  const migrations = await readD1Migrations('migrations');
  return {
    test: {
      // The gateway logs a JSON line per request: show logs only for failing tests.
      silent: 'passed-only',
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: './wrangler.toml' },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  ENVIRONMENT: 'production',
                  PUBLIC_URL: 'https://gate.example.com',
                  // The plugin also reads a developer's .dev.vars; blank its key so tests run
                  // locally exactly as in CI, where no .dev.vars exists (helpers set keys).
                  SIGNING_KEYS: '',
                },
              },
            }),
          ],
          test: {
            name: 'worker',
            include: ['test/worker/**/*.test.{ts,tsx}'],
            setupFiles: ['./test/worker/setup.ts'],
            testTimeout: 30_000,
          },
        },
        {
          test: {
            name: 'e2e',
            include: ['test/e2e/**/*.test.ts'],
            environment: 'node',
            testTimeout: 120_000,
            hookTimeout: 120_000,
            // Each file starts its own wrangler dev; two at once is all 2 cores take well.
            maxWorkers: 2,
            fileParallelism: true,
          },
        },
      ],
    },
  };
});
