import { applyD1Migrations, env } from 'cloudflare:test';
import { afterAll, vi } from 'vitest';

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Files share a runtime (vitest.config.ts): what a file stubbed, spied on or faked is put back
// after it. Spies first, which also forgets them: vitest keeps a spy restored on its own, and a
// later file's `restoreAllMocks` would put back what it replaced (a `fetch` another file stubbed).
afterAll(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});
