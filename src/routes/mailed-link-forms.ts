/**
 * What the email-verification and password-reset endpoints share: their body schemas, the
 * "feature is off" refusal, and the wrapper that turns a refusal of a form post (or of a page
 * a link opens) into a clear page instead of JSON.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import { emailInput } from '../auth/email-address';
import type { AppEnv } from '../env';
import { wantsHtml } from '../http/client';
import { ApiError, toApiError } from '../http/errors';

/** The same address rules as registration: auth/email-address.ts `emailInput`. */
export const emailField = emailInput;
/** A link token as it arrives; its shape is checked by storage (anything else simply does not match). */
export const tokenField = v.pipe(v.string('must be a string'), v.minLength(1, 'is required'), v.maxLength(200, 'is too long'));
const returnToField = v.optional(v.pipe(v.string('must be a string'), v.maxLength(2048, 'is too long')));

export const emailBody = v.strictObject({ email: emailField, return_to: returnToField }, 'is not a known field');
export const tokenBody = v.strictObject({ token: tokenField }, 'is not a known field');
/**
 * Confirming a verification link: the token, and the account's password (the person confirming
 * must be the one who chose it; auth/email-verification.ts `confirmEmail`); `session` and
 * `return_to` say how the sign-in that follows answers, as for `/auth/login`.
 */
export const confirmBody = v.strictObject(
  {
    token: tokenField,
    password: v.optional(v.pipe(v.string('must be a string'), v.minLength(1, 'is required'), v.maxLength(1024, 'is too long (256 characters at most)'))),
    session: v.optional(v.picklist(['cookie', 'token'], 'must be "cookie" or "token"')),
    return_to: returnToField,
    // Sent by the confirm form for password managers only.
    username: v.optional(v.pipe(v.string(), v.maxLength(254))),
  },
  'is not a known field',
);
export const resetBody = v.strictObject(
  {
    token: tokenField,
    password: v.pipe(v.string('must be a string'), v.minLength(1, 'is required'), v.maxLength(1024, 'is too long (256 characters at most)')),
    // Sent by the reset form for password managers only.
    username: v.optional(v.pipe(v.string(), v.maxLength(254))),
  },
  'is not a known field',
);

export const featureOff = (what: string) => new ApiError('not_found', `${what} is not available on this gateway.`);

/** Whether a failure of this request should be a page: a form post, or a browser opening a link. */
export function answersWithPage(c: Context<AppEnv>): boolean {
  if (c.req.method === 'GET') return wantsHtml(c);
  return (c.req.header('content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

/**
 * Runs a handler; a refusal (an {@link ApiError} below 500, or a mail or storage outage) of a request that
 * wants a page becomes the page `onError` renders. Other failures go to the error handler (JSON,
 * or a bare 500 that names nothing).
 */
export function pageAware(handler: (c: Context<AppEnv>) => Promise<Response>, onError: (c: Context<AppEnv>, err: ApiError) => Promise<Response>) {
  return async (c: Context<AppEnv>) => {
    try {
      return await handler(c);
    } catch (e) {
      const err = toApiError(e);
      const pageable = err.status < 500 || err.code === 'mail_unavailable' || err.code === 'unavailable';
      if (!answersWithPage(c) || !pageable) throw e;
      return onError(c, err);
    }
  };
}
