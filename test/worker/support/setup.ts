import { applyD1Migrations, env } from 'cloudflare:test';
import { afterAll, vi } from 'vitest';

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Files share a runtime (vitest.config.ts): a `fetch` or other global a file stubbed is its own.
afterAll(() => {
  vi.unstubAllGlobals();
});
