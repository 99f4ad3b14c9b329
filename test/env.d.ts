import type { D1Migration } from 'cloudflare:test';
import type { UserSessionsNamespace } from '../src/storage/user-sessions';

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      REVOKED: KVNamespace;
      USER_SESSIONS: UserSessionsNamespace;
      TEST_MIGRATIONS: D1Migration[];
      /** wrangler.toml's [[ratelimits]] binding, as Miniflare runs it locally. */
      RATE_LIMITER?: RateLimit;
      [setting: string]: unknown;
    }
  }
}
export {};
