/**
 * Sends the prepared request to a route's origin (a URL, or a Workers service binding) and
 * maps failures to 502/504 without naming the origin: the log gets the details, the client
 * only learns that the origin did not answer.
 */
import { serviceBinding, type Env } from '../env';
import { ApiError } from '../http/errors';
import { log } from '../observability/log';
import type { CompiledRoute } from './route-table';

export interface OriginRequest {
  method: string;
  /** Canonical path plus the original query string. */
  pathAndQuery: string;
  headers: Headers;
  body: ReadableStream | null;
  /** Host the client used: service bindings get it, so the origin can build its own links. */
  host: string;
}

function targetUrl(route: CompiledRoute, req: OriginRequest): string {
  if (route.originUrl) return `${route.originUrl.origin}${route.basePath}${req.pathAndQuery}`;
  return `https://${req.host}${req.pathAndQuery}`;
}

function bindingFetcher(env: Env, name: string): Pick<Fetcher, 'fetch'> {
  const binding = serviceBinding(env, name);
  if (!binding) {
    log.error('origin_binding_missing', { binding: name });
    throw new ApiError('bad_gateway', 'The origin service is not available.');
  }
  return binding;
}

export async function fetchOrigin(env: Env, route: CompiledRoute, req: OriginRequest): Promise<Response> {
  const url = targetUrl(route, req);
  const fetcher = route.binding ? bindingFetcher(env, route.binding) : null;
  const controller = new AbortController();
  const timeoutMs = route.config.timeout_seconds * 1000;
  // Only the wait for response headers is bounded: a streamed body may legitimately run long.
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const init: RequestInit = {
    method: req.method,
    headers: req.headers,
    body: req.body,
    redirect: 'manual',
    signal: controller.signal,
  };
  try {
    return fetcher ? await fetcher.fetch(url, init) : await fetch(url, init);
  } catch (e) {
    const timedOut = controller.signal.aborted;
    log.warn(timedOut ? 'origin_timeout' : 'origin_unreachable', {
      route: route.config.path,
      origin: route.config.origin,
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
    if (timedOut) throw new ApiError('gateway_timeout', 'The origin did not answer in time.');
    throw new ApiError('bad_gateway', 'The origin could not be reached.');
  } finally {
    clearTimeout(timer);
  }
}
