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
import { MailUnavailableError } from '../mail/errors';
import { StorageUnavailableError } from '../storage/errors';

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return new ApiError('payload_too_large', 'The request body is too large (64 KiB at most).');
    if (err.status === 400) return new ApiError('invalid_request', 'The request is malformed.');
  }
  // D1 and KV failures are typed at the storage boundary (storage/errors.ts `guard`): they are
  // an outage, not a bug of ours, and say so with `Retry-After`, still without any of their text.
  if (err instanceof StorageUnavailableError) return unavailable(err.description);
  // The mail relay or Email Service failed: the caller sent nothing half-done, so a retry is safe.
  if (err instanceof MailUnavailableError) {
    return new ApiError('mail_unavailable', 'The email could not be sent right now. Nothing was changed; try again in a minute.', { retryAfter: 30 });
  }
  return new ApiError('server_error', 'Something went wrong. Try again later.');
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
