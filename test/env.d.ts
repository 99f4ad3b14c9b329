import type { D1Migration } from 'cloudflare:test';

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      REVOKED: KVNamespace;
      TEST_MIGRATIONS: D1Migration[];
      [setting: string]: unknown;
    }
  }
}
export {};
