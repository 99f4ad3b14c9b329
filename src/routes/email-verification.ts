/**
 * Email verification (`EMAIL_VERIFICATION` = required | optional; off: 404):
 *
 * - `GET  /email/verify?token=[&return_to=]`  the page a mailed link opens: the address, the
 *                                 account's password and a Confirm button. It never uses the
 *                                 link (mail scanners prefetch GETs).
 * - `POST /email/verify`          `token`, `password` (the account's: whoever registered the
 *                                 address with their own password cannot have its owner's
 *                                 click verify it), optional `session`, `return_to`: confirms
 *                                 (the link works once) and signs in like `/auth/login`.
 * - `POST /email/verify/resend`   `email`: a fresh link for an unverified account; the same
 *                                 202 for every address, the mail sent after the answer.
 *
 * Flow code (auth/email-verification.ts) and pages are loaded on first use.
 */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { ApiError } from '../http/errors';
import { sendInBackground } from '../mail/delivery';
import { safeReturnTo } from '../http/return-to';
import { checkRateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import { peekAccountToken } from '../storage/account-tokens';
import { findUserById, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import type { Config } from '../config/schema';
import { confirmBody, emailBody, featureOff, pageAware } from './mailed-link-forms';

const invalidLink = () =>
  new ApiError('invalid_link', 'This confirmation link is not valid any more: it was used, replaced by a newer one, or has expired. If you confirmed your email already, just sign in; otherwise ask for a new link by signing in.');

/** Where a confirmation leads: the registration's return_to carried in the link, else the account page. */
const confirmedReturnTo = (value: string | undefined, config: Config) => (value === undefined || value === '' ? `${config.AUTH_PREFIX}/account` : safeReturnTo(value, config));

/** Signing in after a confirmation is a password sign-in: only where one would be allowed. */
const maySignIn = (config: Config, user: User) => config.PASSWORD_LOGIN === 'enabled' && user.disabledAt === null;

function requireVerification(c: Context<AppEnv>) {
  if (c.get('config').EMAIL_VERIFICATION === 'off') throw featureOff('Email verification');
}

async function showError(c: Context<AppEnv>, err: ApiError) {
  const { errorPage } = await import('./mailed-link-views');
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
      const { confirmEmailPage, messagePage } = await import('./mailed-link-views');
      const prefix = c.get('config').AUTH_PREFIX;
      if (user.emailVerified) return messagePage(c, 'Email already confirmed', `${user.email} is already confirmed. You can sign in.`, { href: `${prefix}/login`, label: 'Sign in' });
      const returnTo = c.req.query('return_to');
      return confirmEmailPage(c, token, user.email, { returnTo: returnTo === undefined ? undefined : safeReturnTo(returnTo, c.get('config')), askPassword: user.passwordHash !== null });
    }, showError),
  )
  .post(
    '/email/verify',
    sameOrigin({ always: true }),
    pageAware(async (c) => {
      requireVerification(c);
      await checkRateLimit(c, 'login');
      const { kind, data } = await readBody(c, confirmBody);
      const config = c.get('config');
      const { confirmEmail } = await import('../auth/email-verification');
      let result: Awaited<ReturnType<typeof confirmEmail>>;
      try {
        result = await confirmEmail(c, data.token, data.password);
      } catch (e) {
        // A wrong password (or the back-off after several) on the form: the same form again with
        // the reason. The link was not used and still works.
        if (kind === 'form' && e instanceof ApiError && (e.code === 'invalid_credentials' || e.code === 'rate_limited')) {
          const found = await peekAccountToken(c.env.DB, data.token, 'verify_email', now());
          if (found) {
            if (e.extra.retryAfter !== undefined) c.header('retry-after', String(e.extra.retryAfter));
            const { confirmEmailPage } = await import('./mailed-link-views');
            const returnTo = data.return_to === undefined ? undefined : safeReturnTo(data.return_to, config);
            return confirmEmailPage(c, data.token, found.email, { returnTo, askPassword: true, error: e.description, status: e.status === 429 ? 429 : 401 });
          }
        }
        throw e;
      }
      if (result.status === 'invalid') throw invalidLink();
      c.header('cache-control', 'no-store');
      // The person who chose the password has just proved it and the mailbox: sign them in, through
      // the same path as /auth/login (its gates apply), and on to where the registration was going.
      if (result.status === 'verified' && result.passwordChecked && maySignIn(config, result.user)) {
        const { signInAfterConfirmation } = await import('./password');
        return signInAfterConfirmation(c, result.user, kind, { session: data.session, return_to: confirmedReturnTo(data.return_to, config) });
      }
      if (kind === 'json') return c.json({ status: result.status, email: result.user.email });
      const { messagePage } = await import('./mailed-link-views');
      const prefix = config.AUTH_PREFIX;
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
      const { resendVerification } = await import('../auth/email-verification');
      // After the answer: neither its content nor its timing may depend on the account.
      const returnTo = data.return_to === undefined ? undefined : safeReturnTo(data.return_to, c.get('config'));
      sendInBackground(c, 'verify_email', () => resendVerification(c, data.email, returnTo));
      const { checkEmailAnswer } = await import('./mailed-link-views');
      return checkEmailAnswer(c, kind, 'resend', data.email, safeReturnTo(data.return_to, c.get('config')));
    }, showError),
  );
