import type { D1Migration } from 'cloudflare:test';
import type { RevocationFenceNamespace } from '../src/storage/revocation-fence';

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      REVOKED: KVNamespace;
      REVOCATION_FENCE: RevocationFenceNamespace;
      TEST_MIGRATIONS: D1Migration[];
      [setting: string]: unknown;
    }
  }
}
export {};
