/**
 * Forgot / reset password. On when a mail transport is configured and password
 * sign-in is enabled; otherwise 404 (the sign-in page does not offer it then).
 *
 * - `GET  /password/forgot`           the form (one email field)
 * - `POST /password/forgot`           `email`: the same 202 for every address; a link is
 *                                      mailed, after the answer, to an account with a password
 * - `GET  /password/reset?token=`     the new-password form; the link is checked, never used
 * - `POST /password/reset`            `token`, `password`: sets it, ends every session
 *
 * Rate limits: per IP (`account_mail`, middleware/rate-limit.ts) on both posts; per account,
 * one link a minute (auth/email-verification.ts `mailLink`).
 */
import { Hono, type Context } from 'hono';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { clearSessionCookies, hasSessionCookie } from '../http/cookies';
import { ApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { sendInBackground } from '../mail/delivery';
import { mailEnabled } from '../mail/send';
import { checkRateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import { emailBody, featureOff, pageAware, resetBody } from './mailed-link-forms';

/** Whether the gateway offers password reset (the sign-in page's "Forgot password?" link follows this). */
export const passwordResetAvailable = (config: Config) => mailEnabled(config) && config.PASSWORD_LOGIN === 'enabled';

function requireReset(c: Context<AppEnv>) {
  if (!passwordResetAvailable(c.get('config'))) throw featureOff('Password reset');
}

async function showError(c: Context<AppEnv>, err: ApiError) {
  const { errorPage } = await import('./mailed-link-views');
  const prefix = c.get('config').AUTH_PREFIX;
  return errorPage(c, err, err.code === 'invalid_link' ? { href: `${prefix}/password/forgot`, label: 'Ask for a new link' } : undefined);
}

export const passwordResetRoutes = new Hono<AppEnv>()
  .get(
    '/password/forgot',
    pageAware(async (c) => {
      requireReset(c);
      const { forgotPasswordPage } = await import('./mailed-link-views');
      return forgotPasswordPage(c, safeReturnTo(c.req.query('return_to'), c.get('config')));
    }, showError),
  )
  .post(
    '/password/forgot',
    sameOrigin({ always: true }),
    pageAware(async (c) => {
      requireReset(c);
      await checkRateLimit(c, 'account_mail');
      const { kind, data } = await readBody(c, emailBody);
      const { requestPasswordReset } = await import('../auth/password-reset');
      // After the answer: neither its content nor its timing may depend on the account.
      sendInBackground(c, 'password_reset', () => requestPasswordReset(c, data.email));
      const { checkEmailAnswer } = await import('./mailed-link-views');
      return checkEmailAnswer(c, kind, 'forgot', data.email, safeReturnTo(data.return_to, c.get('config')));
    }, showError),
  )
  .get(
    '/password/reset',
    pageAware(async (c) => {
      requireReset(c);
      const token = c.req.query('token') ?? '';
      const { checkResetToken, invalidResetLink } = await import('../auth/password-reset');
      const checked = await checkResetToken(c, token);
      if (!checked) throw invalidResetLink();
      const { resetPasswordPage } = await import('./mailed-link-views');
      return resetPasswordPage(c, token, checked.user.email);
    }, showError),
  )
  .post(
    '/password/reset',
    sameOrigin({ always: true }),
    pageAware(
      async (c) => {
        requireReset(c);
        await checkRateLimit(c, 'account_mail');
        const { kind, data } = await readBody(c, resetBody);
        const { resetPassword, checkResetToken } = await import('../auth/password-reset');
        let result: Awaited<ReturnType<typeof resetPassword>>;
        try {
          result = await resetPassword(c, data.token, data.password);
        } catch (e) {
          // A refused password on the form: the same form again, with the reason (the link still works).
          if (kind === 'form' && e instanceof ApiError && e.code === 'invalid_request') {
            const checked = await checkResetToken(c, data.token);
            if (checked) {
              const { resetPasswordPage } = await import('./mailed-link-views');
              return resetPasswordPage(c, data.token, checked.user.email, { error: e.description, status: 400 });
            }
          }
          throw e;
        }
        // This browser's session (if any) has just ended with all the others.
        if (hasSessionCookie(c)) clearSessionCookies(c);
        c.header('cache-control', 'no-store');
        if (kind === 'json') return c.json({ status: 'password_reset', email: result.user.email, ended_sessions: result.endedSessions });
        const { messagePage } = await import('./mailed-link-views');
        const prefix = c.get('config').AUTH_PREFIX;
        return messagePage(c, 'Password changed', 'Your new password is set and every device was signed out. Sign in with the new password.', { href: `${prefix}/login`, label: 'Sign in' });
      },
      showError,
    ),
  );
