/**
 * Renders every error as docs/design.md's JSON (or a plain page for browser navigations where a
 * route asks for it). Unknown exceptions become a bare 500: the log gets the details, the
 * client gets no stack, SQL or host name.
 */
import type { Context, ErrorHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AppEnv } from '../env';
import { ApiError, errorResponse, unavailable } from '../http/errors';
import { log } from '../observability/log';

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return new ApiError('payload_too_large', 'The request body is too large (64 KiB at most).');
    if (err.status === 400) return new ApiError('invalid_request', 'The request is malformed.');
  }
  if (isDependencyOutage(err)) return unavailable();
  return new ApiError('server_error', 'Something went wrong. Try again later.');
}

/**
 * Errors by which D1 and KV say they cannot serve right now (as opposed to a bug of ours):
 * these answer 503 `unavailable` with `Retry-After`, still without any of their text.
 */
const OUTAGE = /\bD1_(ERROR|EXEC_ERROR)\b|\bD1 DB\b|\bKV (GET|PUT|DELETE|LIST)\b.*\bfailed\b|Network connection lost|storage (caused object to be reset|operation exceeded timeout)|\boverloaded\b/i;

export function isDependencyOutage(err: unknown): boolean {
  return err instanceof Error && OUTAGE.test(err.message);
}

export const errorHandler: ErrorHandler<AppEnv> = (err: Error, c: Context<AppEnv>) => {
  const apiError = toApiError(err);
  if (apiError.status >= 500 && !(err instanceof ApiError)) {
    log.error('unhandled_error', {
      path: c.req.path,
      method: c.req.method,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
  }
  // Materialise the headers the handler prepared before it threw (cookie deletions above all:
  // a failed logout must still clear the cookies); hono merges them into the error response.
  void c.res;
  return errorResponse(apiError);
};
