/**
 * The error contract of docs/design.md: OAuth-style JSON bodies, one status per code, and
 * `WWW-Authenticate` on 401s. Throw an {@link ApiError} anywhere; `errorHandler` renders it.
 */
import { HTTPException } from 'hono/http-exception';
import { MailUnavailableError } from '../mail/errors';
import { StorageUnavailableError } from '../storage/errors';

export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_credentials: 401,
  /** A mailed link (verification, password reset) that is unknown, used, replaced or expired. */
  invalid_link: 400,
  invalid_token: 401,
  /** RFC 9470: the token is valid but its authentication is too weak or too old for the resource. */
  insufficient_user_authentication: 401,
  /** RFC 6749 §5.2 (token, revocation, introspection endpoints) and RFC 7591 §3.2.2 (registration). */
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  /** RFC 7009 §2.2.1: a token type the server cannot revoke. */
  unsupported_token_type: 400,
  access_denied: 403,
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

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/**
 * The same error as a plain HTML page, for a browser when no app (and so no branded page) can
 * be built: a bad configuration, or the entry point's last line of defence. It says only what
 * the JSON says, and loads nothing (its CSP allows its own inline style alone).
 */
export function errorPage(error: ApiError): Response {
  const title = 'This service is not available right now';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}@media (prefers-color-scheme:dark){body{color:#eee;background:#121212}}code{font-size:.9em}</style>
</head><body><main><h1>${title}</h1><p>${escapeHtml(error.description)}</p><p>Error code: <code>${error.code}</code> (${error.status}).</p></main></body></html>`;
  return new Response(html, {
    status: error.status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      ...error.extra.headers,
    },
  });
}

export const badRequest = (description: string) => new ApiError('invalid_request', description);
export const invalidToken = (description = 'The access token is missing, invalid, expired or revoked.') =>
  new ApiError('invalid_token', description);
export const unavailable = (description = 'A service Gatehouse depends on is unavailable. Try again shortly.') =>
  new ApiError('unavailable', description, { retryAfter: 5 });

/** Any thrown value as the error the client gets: an ApiError as is, outages as 503, the rest a bare 500. */
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

/** What a token lacks for a resource: the proxy's route `require`, or a recent sign-in. */
export interface StepUpNeed {
  /** The `require` values the token does not meet (sent as `acr_values`). */
  missing: ('mfa' | 'passkey')[];
  /** Set when the sign-in is older than the allowed age (`max_auth_age`, `RECENT_AUTH_SECONDS`). */
  maxAge?: number;
}

/**
 * RFC 9470's refusal: 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`
 * naming what would do (`acr_values`: the missing `require` values, space-separated; `max_age`).
 * The JSON body repeats both.
 */
export function insufficientUserAuthentication(need: StepUpNeed, stepUpUrl: string): ApiError {
  const parts = [
    ...(need.missing.length ? [need.missing.includes('mfa') ? 'a second factor' : '', need.missing.includes('passkey') ? 'a passkey' : ''].filter(Boolean) : []),
    ...(need.maxAge !== undefined ? [`a sign-in within ${need.maxAge} seconds`] : []),
  ];
  const description = `This resource needs ${parts.join(' and ')}.`;
  const challenge = [
    'Bearer error="insufficient_user_authentication"',
    `error_description="${description}"`,
    ...(need.missing.length ? [`acr_values="${need.missing.join(' ')}"`] : []),
    ...(need.maxAge !== undefined ? [`max_age=${need.maxAge}`] : []),
  ].join(', ');
  return new ApiError('insufficient_user_authentication', description, {
    headers: { 'www-authenticate': challenge },
    fields: {
      ...(need.missing.length ? { acr_values: need.missing.join(' ') } : {}),
      ...(need.maxAge !== undefined ? { max_age: need.maxAge } : {}),
      step_up_url: stepUpUrl,
    },
  });
}
