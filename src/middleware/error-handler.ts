/**
 * Renders every error as docs/design.md's JSON (or a plain page for browser navigations where a
 * route asks for it). Unknown exceptions become a bare 500: the log gets the details, the
 * client gets no stack, SQL or host name.
 */
import type { Context, ErrorHandler } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, errorResponse, toApiError } from '../http/errors';
import { log } from '../observability/log';

/**
 * Logs a fault that is not one of our refusals (a bug, an outage) with what the client is not
 * told. For handlers that answer errors themselves (a page) instead of rethrowing them here.
 */
export function logUnhandled(c: Context<AppEnv>, err: unknown, apiError: ApiError = toApiError(err)): void {
  if (apiError.status < 500 || err instanceof ApiError) return;
  log.error('unhandled_error', {
    path: c.req.path,
    method: c.req.method,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
  });
}

export const errorHandler: ErrorHandler<AppEnv> = (err: Error, c: Context<AppEnv>) => {
  const apiError = toApiError(err);
  logUnhandled(c, err, apiError);
  // Materialise the headers the handler prepared before it threw (cookie deletions above all:
  // a failed logout must still clear the cookies); hono merges them into the error response.
  void c.res;
  return errorResponse(apiError);
};
