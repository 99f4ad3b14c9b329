/**
 * The error contract of docs/design.md: OAuth-style JSON bodies, one status per code, and
 * `WWW-Authenticate` on 401s. Throw an {@link ApiError} anywhere; `errorHandler` renders it.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_credentials: 401,
  /** A mailed link (verification, password reset) that is unknown, used, replaced or expired. */
  invalid_link: 400,
  invalid_token: 401,
  /** RFC 9470: the token is valid but its authentication is too weak or too old for the resource. */
  insufficient_user_authentication: 401,
  forbidden: 403,
  /** Password sign-in of an account whose address is not verified yet (EMAIL_VERIFICATION=required). */
  email_not_verified: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  server_error: 500,
  configuration_error: 500,
  bad_gateway: 502,
  unavailable: 503,
  mail_unavailable: 503,
  gateway_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  readonly status: (typeof ERROR_STATUS)[ErrorCode];
  constructor(
    readonly code: ErrorCode,
    readonly description: string,
    readonly extra: { retryAfter?: number; headers?: Record<string, string>; fields?: Record<string, unknown> } = {},
  ) {
    super(description);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code];
  }
}

/** Builds the JSON response for an error code. */
export function errorResponse(error: ApiError): Response {
  const headers = new Headers({
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...error.extra.headers,
  });
  // A code that states its own challenge (step-up: RFC 9470's acr_values / max_age) keeps it.
  if (error.status === 401 && !headers.has('www-authenticate')) {
    // RFC 6750 sec. 3.1 defines only invalid_request, invalid_token and insufficient_scope for
    // this header; our own codes (invalid_credentials) stay in the JSON body.
    const code = error.code === 'invalid_token' ? 'invalid_token' : 'invalid_request';
    headers.set('www-authenticate', `Bearer error="${code}", error_description="${error.description.replace(/["\\]/g, '')}"`);
  }
  if (error.extra.retryAfter !== undefined) headers.set('retry-after', String(Math.max(1, Math.ceil(error.extra.retryAfter))));
  const body = { error: error.code, error_description: error.description, ...error.extra.fields };
  return new Response(JSON.stringify(body), { status: error.status, headers });
}

export const badRequest = (description: string) => new ApiError('invalid_request', description);
export const invalidToken = (description = 'The access token is missing, invalid, expired or revoked.') =>
  new ApiError('invalid_token', description);
export const unavailable = (description = 'A service Gatehouse depends on is unavailable. Try again shortly.') =>
  new ApiError('unavailable', description, { retryAfter: 5 });
