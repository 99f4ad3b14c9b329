/**
 * The Worker's `scheduled` entry: runs housekeeping with the same validated config as
 * requests. A bad config or a D1 failure is logged (and rethrown, so the cron run shows as
 * failed in the dashboard); the next run tries again.
 */
import { loadConfig } from '../config/load';
import type { Env } from '../env';
import { log } from '../observability/log';
import { runHousekeeping } from './housekeeping';

export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  const result = loadConfig(env);
  if (!result.ok) {
    log.error('housekeeping_skipped', { cron: controller.cron, setting: result.error.setting, message: result.error.message });
    return;
  }
  try {
    await runHousekeeping(env.DB, result.config, Math.floor(controller.scheduledTime / 1000));
  } catch (e) {
    log.error('housekeeping_failed', { cron: controller.cron, error: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}
