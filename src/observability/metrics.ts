/**
 * Metrics for dashboards: one Workers Analytics Engine data point per request outcome (the same
 * decision the request log records), when the `METRICS` binding is configured. Without it
 * nothing is built or written, and this module is never loaded (request-log.ts imports it on the
 * first request that has the binding). `writeDataPoint` queues the point and returns: nothing is
 * awaited, and a binding that throws costs the point, never the request (logged once per
 * isolate). The fields' positions are the contract the README's queries read.
 *
 * @example
 * if (metrics) writeDecisionPoint(c, metrics, { route: '/app', decision: 'allow', policy: 'required', status: 200, latencyMs: 12 })
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { log } from './log';

export interface DecisionPoint {
  /** The route as the request log names it: a `ROUTES` entry, or the gateway's route pattern. */
  route: string;
  decision: string;
  policy: string;
  status: number;
  latencyMs: number;
}

/** Analytics Engine takes one index of at most 96 bytes; a UTF-8 character is at most 3 per UTF-16 unit. */
const INDEX_BYTES = 96;
const encoder = new TextEncoder();
function indexOf(route: string): string {
  if (route.length * 3 <= INDEX_BYTES) return route;
  let cut = route.slice(0, INDEX_BYTES);
  while (encoder.encode(cut).length > INDEX_BYTES) cut = cut.slice(0, -1);
  return cut;
}

/**
 * What kind of decision it was: a proxied request (a `ROUTES` entry matched), a sign-in outcome
 * (the request recorded one: auth/events.ts), a forward-auth answer, or anything else the
 * gateway answered (`gateway`).
 */
function kindOf(c: Context<AppEnv>, route: string): string {
  if (c.get('proxyRoute') !== undefined) return 'proxy';
  if (c.get('signIn')) return 'sign_in';
  return route === `${c.get('config')?.AUTH_PREFIX ?? '/auth'}/verify` ? 'forward_auth' : 'gateway';
}

let failureLogged = false;

/** Writes the point if `METRICS` is bound; never throws. */
export function writeDecisionPoint(c: Context<AppEnv>, metrics: AnalyticsEngineDataset, point: DecisionPoint): void {
  const method = c.req.method;
  const country: unknown = c.req.raw.cf?.country;
  const signIn = c.get('signIn');
  try {
    metrics.writeDataPoint({
      indexes: [indexOf(point.route)],
      blobs: [
        kindOf(c, point.route),
        point.route,
        point.decision,
        point.policy,
        method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write',
        typeof country === 'string' ? country : '',
        signIn?.method ?? '',
        signIn?.outcome ?? '',
      ],
      doubles: [point.status, point.latencyMs, 1],
    });
  } catch (e) {
    if (failureLogged) return;
    failureLogged = true;
    log.error('metrics_write_failed', { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
}
