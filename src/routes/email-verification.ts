/**
 * Email verification (issue 11, `EMAIL_VERIFICATION` = required | optional; off: 404):
 *
 * - `GET  /email/verify?token=`   the page a mailed link opens: the address and a Confirm
 *                                 button. It never uses the link (mail scanners prefetch GETs).
 * - `POST /email/verify`          `token`: confirms (the link works once).
 * - `POST /email/verify/resend`   `email`: a fresh link for an unverified account; the same
 *                                 202 for every address, the mail sent after the answer.
 *
 * Flow code (auth/email-verification.ts) and pages are loaded on first use.
 */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { ApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { checkRateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import { peekAccountToken } from '../storage/account-tokens';
import { findUserById } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { emailBody, featureOff, pageAware, tokenBody } from './account-link-forms';

const invalidLink = () =>
  new ApiError('invalid_link', 'This confirmation link is not valid any more: it was used, replaced by a newer one, or has expired. If you confirmed your email already, just sign in; otherwise ask for a new link by signing in.');

function requireVerification(c: Context<AppEnv>) {
  if (c.get('config').EMAIL_VERIFICATION === 'off') throw featureOff('Email verification');
}

async function showError(c: Context<AppEnv>, err: ApiError) {
  const { errorPage } = await import('./account-link-views');
  return errorPage(c, err);
}

export const emailVerificationRoutes = new Hono<AppEnv>()
  .get(
    '/email/verify',
    pageAware(async (c) => {
      requireVerification(c);
      const token = c.req.query('token') ?? '';
      const found = await peekAccountToken(c.env.DB, token, 'verify_email', now());
      const user = found ? await findUserById(c.env.DB, found.userId) : null;
      if (!found || !user || user.email !== found.email) throw invalidLink();
      const { confirmEmailPage, messagePage } = await import('./account-link-views');
      const prefix = c.get('config').AUTH_PREFIX;
      if (user.emailVerified) return messagePage(c, 'Email already confirmed', `${user.email} is already confirmed. You can sign in.`, { href: `${prefix}/login`, label: 'Sign in' });
      return confirmEmailPage(c, token, user.email);
    }, showError),
  )
  .post(
    '/email/verify',
    sameOrigin({ always: true }),
    pageAware(async (c) => {
      requireVerification(c);
      const { kind, data } = await readBody(c, tokenBody);
      const { confirmEmail } = await import('../auth/email-verification');
      const result = await confirmEmail(c, data.token);
      if (result.status === 'invalid') throw invalidLink();
      c.header('cache-control', 'no-store');
      if (kind === 'json') return c.json({ status: result.status, email: result.user.email });
      const { messagePage } = await import('./account-link-views');
      const prefix = c.get('config').AUTH_PREFIX;
      const message = result.status === 'verified' ? `Thank you: ${result.user.email} is confirmed. You can now sign in.` : `${result.user.email} was already confirmed. You can sign in.`;
      return messagePage(c, 'Email confirmed', message, { href: `${prefix}/login`, label: 'Sign in' });
    }, showError),
  )
  .post(
    '/email/verify/resend',
    sameOrigin({ always: true }),
    pageAware(async (c) => {
      requireVerification(c);
      await checkRateLimit(c, 'account_mail');
      const { kind, data } = await readBody(c, emailBody);
      const { resendVerification, runInBackground } = await import('../auth/email-verification');
      // After the answer: neither its content nor its timing may depend on the account.
      runInBackground(c, 'verify_email', resendVerification(c, data.email));
      const { checkEmailAnswer } = await import('./account-link-views');
      return checkEmailAnswer(c, kind, 'resend', safeReturnTo(data.return_to, c.get('config')));
    }, showError),
  );
