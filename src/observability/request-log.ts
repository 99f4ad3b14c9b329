/**
 * One JSON log line per request outcome: route, policy (and the policy rule that decided, when a
 * route's policy did), decision, user id, status, latency.
 * Never a token, cookie, query string or header value: the path is logged without its query.
 * Mounted first, so it also sees responses made by the error handler.
 *
 * @example
 * app.use('*', requestLog())
 */
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppEnv } from '../env';
import { clientIp } from '../http/client';
import { randomId } from '../util/random';
import { log } from './log';
import type { writeDecisionPoint } from './metrics';

export type Decision = 'allow' | 'deny' | 'rate_limited' | 'invalid' | 'error';

/** What the gateway decided, read from the status it answered with. */
export function decisionFor(status: number): Decision {
  if (status === 401 || status === 403) return 'deny';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'error';
  if (status >= 400) return 'invalid';
  return 'allow';
}

function policyFor(c: Context<AppEnv>): string {
  const explicit = c.get('policy');
  if (explicit) return explicit;
  const prefix = c.get('config')?.AUTH_PREFIX ?? '/auth';
  const path = c.req.path;
  return path === prefix || path.startsWith(`${prefix}/`) || path.startsWith('/.well-known/') ? 'gateway' : 'none';
}

/**
 * Writes a request's metrics data point (observability/metrics.ts): loaded on the first request
 * of an isolate that has the `METRICS` binding, so start-up evaluates none of it.
 */
let writePoint: typeof writeDecisionPoint | undefined;

function writeLine(c: Context<AppEnv>, started: number, ended: number, metrics: AnalyticsEngineDataset | undefined): void {
  const status = c.res?.status ?? 500;
  // REQUEST_LOG = "refusals": an allowed request writes no line (the config is unset only when
  // configuration failed, and that is a 500: always logged). Metrics count it all the same.
  const quiet = status < 400 && c.get('config')?.REQUEST_LOG === 'refusals';
  if (quiet && !metrics) return;
  const route = c.get('proxyRoute') ?? c.get('lazyRoute') ?? routePath(c);
  const policy = policyFor(c);
  const decision = decisionFor(status);
  const latency = ended - started;
  if (metrics && writePoint) writePoint(c, metrics, { route, decision, policy, status, latencyMs: latency });
  if (quiet) return;
  const fields = {
    request_id: c.get('requestId'),
    method: c.req.method,
    route,
    path: c.req.path.slice(0, 256),
    policy,
    // The route policy's rule that decided (README "Policy"), and the external service's reason.
    ...(c.get('policyRule') === undefined ? {} : { policy_rule: c.get('policyRule') }),
    ...(c.get('policyReason') ? { policy_reason: c.get('policyReason') } : {}),
    decision,
    status,
    user_id: c.get('user')?.id ?? null,
    ...(c.get('clientId') === undefined ? {} : { client_id: c.get('clientId') }),
    ip: clientIp(c),
    latency_ms: latency,
  };
  if (status >= 500) log.error('request', fields);
  else log.info('request', fields);
}

/**
 * A request id where Cloudflare gave no `cf-ray` (local development, tests, benchmarks): a
 * random prefix drawn once per isolate and a counter, unique without random bytes per request.
 */
let isolatePrefix: string | undefined;
let counter = 0;
function localRequestId(): string {
  isolatePrefix ??= randomId(6);
  counter += 1;
  return `${isolatePrefix}-${counter.toString(36)}`;
}

export function requestLog(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = Date.now();
    c.set('requestId', c.req.header('cf-ray')?.slice(0, 64) ?? localRequestId());
    try {
      await next();
    } finally {
      const ended = Date.now();
      const metrics = c.env?.METRICS;
      // A module that fails to load costs the data point, never the request (tried again next time).
      if (metrics && !writePoint) writePoint = await import('./metrics').then((m) => m.writeDecisionPoint, () => undefined);
      writeLine(c, started, ended, metrics);
    }
  };
}
