/**
 * Recording an auth event: the only way to do it. Each event becomes one structured log line
 * (warn for security events), one row in `auth_events` (storage/events.ts), and, for security
 * events, a webhook alert (observability/alerts.ts). The client's IP and user agent come from
 * the request. A failed write is logged, never thrown: the response does not depend on it.
 *
 * @example
 * await recordEvent(c, { event: 'login', outcome: 'success', userId: user.id })
 * recordEventInBackground(c, { event: 'revoked_token_presented', outcome: 'security', userId })
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { clientIp, userAgent } from '../http/client';
import { sendAlert } from '../observability/alerts';
import { log } from '../observability/log';
import { insertEvent, type AuthEvent } from '../storage/events';

export type EventInput = Omit<AuthEvent, 'ip' | 'userAgent'>;

/**
 * A sign-in's outcome (`login`, `mfa_pending`, `oauth_login`), noted on the request for metrics
 * (observability/metrics.ts): how the user signed in (a password sign-in's refusals name no
 * method) and what came of it. The request's last such event is the one counted.
 */
function noteSignIn(c: Context<AppEnv>, event: EventInput): void {
  const how = event.event === 'oauth_login' ? event.detail?.provider : event.event === 'login' || event.event === 'mfa_pending' ? (event.detail?.method ?? 'password') : undefined;
  if (how === undefined) return;
  c.set('signIn', { method: String(how), outcome: event.event === 'mfa_pending' ? 'second_factor' : event.outcome === 'success' ? 'session' : 'refused' });
}

/** Logs, alerts (security events) and stores the event; resolves once stored or once the failure is logged. */
export function recordEvent(c: Context<AppEnv>, event: EventInput): Promise<void> {
  const full: AuthEvent = { ...event, ip: clientIp(c), userAgent: userAgent(c) };
  noteSignIn(c, event);
  const fields = { outcome: full.outcome, user_id: full.userId ?? null, ip: full.ip ?? null, ...full.detail };
  if (full.outcome === 'security') {
    log.warn(full.event, fields);
    sendAlert(c, full);
  } else {
    log.info(full.event, fields);
  }
  return insertEvent(c.env.DB, full).catch((e: unknown) => {
    log.error('audit_write_failed', { audit_event: full.event, error: e instanceof Error ? e.message : String(e) });
  });
}

/** {@link recordEvent} without waiting for the write: for a refusal that must not wait on D1. */
export function recordEventInBackground(c: Context<AppEnv>, event: EventInput): void {
  const written = recordEvent(c, event);
  try {
    c.executionCtx.waitUntil(written);
  } catch {
    // No execution context (not a Worker request): the promise still runs on its own.
  }
}

/**
 * {@link recordEvent} for work that no request carries (an object's alarm): no IP or user
 * agent to record, and no alert, so only events that raise none (not `security`) come here.
 */
export function recordEventOffRequest(db: D1Database, event: EventInput & { outcome: 'success' | 'failure' }): Promise<void> {
  const fields = { outcome: event.outcome, user_id: event.userId ?? null, ...event.detail };
  log.info(event.event, fields);
  return insertEvent(db, event).catch((e: unknown) => {
    log.error('audit_write_failed', { audit_event: event.event, error: e instanceof Error ? e.message : String(e) });
  });
}
