/**
 * Security alerts: a replayed refresh token, a revoked access token presented again, a burst of
 * failed sign-ins for one account. auth/events.ts records each (warn log, `auth_events` row) and
 * calls {@link sendAlert}, which, when `ALERT_WEBHOOK_URL` is set, POSTs it there as JSON
 * through `waitUntil`: best effort, never delaying or failing the response.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import type { AuthEvent } from '../storage/events';
import { log } from './log';

export interface AlertPayload {
  source: 'gatehouse';
  gateway: string;
  event: string;
  at: string;
  user_id: string | null;
  ip: string | null;
  user_agent: string | null;
  detail: Record<string, unknown>;
}

const WEBHOOK_TIMEOUT_MS = 5000;

/** Queues the webhook POST for an already recorded security event. Never throws. */
export function sendAlert(c: Context<AppEnv>, event: AuthEvent): void {
  const url = c.get('config')?.ALERT_WEBHOOK_URL;
  if (!url) return;
  const payload: AlertPayload = {
    source: 'gatehouse',
    gateway: c.get('config').PUBLIC_URL,
    event: event.event,
    at: new Date().toISOString(),
    user_id: event.userId ?? null,
    ip: event.ip ?? null,
    user_agent: event.userAgent ?? null,
    detail: event.detail ?? {},
  };
  const post = fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'Gatehouse-Alerts' },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  })
    .then(async (r) => {
      await r.body?.cancel();
      if (!r.ok) log.error('alert_webhook_failed', { alert: event.event, status: r.status });
    })
    .catch((e: unknown) => log.error('alert_webhook_failed', { alert: event.event, error: e instanceof Error ? e.message : String(e) }));
  try {
    c.executionCtx.waitUntil(post);
  } catch {
    // No execution context (not a Worker request): the promise still runs on its own.
  }
}
