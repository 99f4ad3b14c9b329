/**
 * The Worker entry point. Everything is built lazily on the first request of an isolate.
 */
import { appFor } from './app';
import { loadConfig } from './config/load';
import type { Env } from './env';
import { navigationWantsHtml } from './http/client';
import { ApiError, errorPage, errorResponse } from './http/errors';
import { configFailure } from './middleware/configure';
import { log } from './observability/log';
import { UserSessions as UserSessionsStore, type LogoutDelivery, type LogoutOutcome } from './storage/user-sessions';

export { requireAuth } from './middleware/require-auth';
export type { AppEnv, AuthUser, Env } from './env';

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    try {
      const result = loadConfig(env);
      if (!result.ok) return configFailure(result.error, request);
      return await appFor(result.config).fetch(request, env, ctx);
    } catch (e) {
      // Last line of defence: nothing escapes as a runtime error page with internals.
      log.error('unhandled_error', { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      const failure = new ApiError('server_error', 'Something went wrong. Try again later.');
      return navigationWantsHtml(request) ? errorPage(failure) : errorResponse(failure);
    }
  },
  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    // Hourly housekeeping is no reason to evaluate its code at every isolate's start-up.
    const { scheduled } = await import('./scheduled/handler');
    await scheduled(controller, env);
  },
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    // Logout notices to origins (auth/logout-notices.ts): rare, so loaded on the first batch.
    const { deliverLogoutNotices } = await import('./app-lazy');
    await deliverLogoutNotices(batch, env);
  },
} satisfies ExportedHandler<Env>;

/**
 * Each user's sessions object (storage/user-sessions.ts) with what only the Worker can do for
 * it: sign and send the logout tokens its alarm finds due (auth/backchannel-logout.ts). Its env
 * is the Worker's own. Loaded on the first delivery through app-lazy.ts, the one lazy entry of
 * what is off the hot path: an entry of its own would split start-up chunks that it shares.
 */
export class UserSessions extends UserSessionsStore<Env> {
  protected override async deliverLogout(item: LogoutDelivery): Promise<LogoutOutcome> {
    const { deliverLogout } = await import('./app-lazy');
    return deliverLogout(this.env, item);
  }
}
