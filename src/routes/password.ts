/**
 * Email + password accounts: `POST /auth/register` and `POST /auth/login`, as JSON (token or
 * cookie mode) or as HTML form posts (cookie mode, 303 to `return_to`).
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { assertNotBreached } from '../auth/breached-password';
import { emailInput } from '../auth/email-address';
import { recordEvent } from '../auth/events';
import { recordLoginFailure, recordLoginSuccess, reserveLoginAttempt } from '../auth/login-throttle';
import { hashPassword, verifyDummy, verifyPassword } from '../auth/password-hash';
import { checkNewPassword, normalisePassword } from '../auth/password-policy';
import { emailDomainAllowed } from '../auth/roles';
import { signIn } from '../auth/sign-in';
import type { AppEnv } from '../env';
import { readBody, type BodyKind } from '../http/body';
import { ApiError, badRequest, toApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { checkRateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import { createUser, findUserByEmail, updatePasswordHash, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { renderLoginPage } from './sign-in-pages';
import { signInReply, type SignInReplyOptions } from './sign-in-reply';

const credentialsSchema = v.strictObject(
  {
    // ASCII checked before lower-casing, which folds some non-ASCII letters into ASCII (auth/email-address.ts).
    email: emailInput,
    // Raw length is capped generously here; the policy counts normalised characters.
    password: v.pipe(v.string('must be a string'), v.minLength(1, 'is required'), v.maxLength(1024, 'is too long (256 characters at most)')),
    name: v.optional(v.pipe(v.string('must be a string'), v.trim(), v.maxLength(100, 'is too long'))),
    session: v.optional(v.picklist(['cookie', 'token'], 'must be "cookie" or "token"')),
    return_to: v.optional(v.pipe(v.string('must be a string'), v.maxLength(2048, 'is too long'))),
  },
  'is not a known field',
);

type Credentials = v.InferOutput<typeof credentialsSchema>;

function requirePasswordLogin(c: Context<AppEnv>) {
  if (c.get('config').PASSWORD_LOGIN === 'disabled') throw new ApiError('forbidden', 'Password sign-in is disabled on this gateway.');
}

/**
 * Signs the user in through the pipeline (auth/sign-in.ts) and answers the way they asked (form,
 * JSON cookie, JSON token). `detail` adds to the audit event (the sign-in after a confirmation).
 */
async function finishSignIn(
  c: Context<AppEnv>,
  user: User,
  kind: BodyKind,
  input: Pick<Credentials, 'session' | 'return_to'>,
  status: 200 | 201,
  detail?: Record<string, string>,
  formPage?: SignInReplyOptions['formPage'],
) {
  const mode = kind === 'form' ? 'form' : input.session === 'cookie' ? 'cookie' : 'token';
  const outcome = await signIn(c, { user, amr: ['pwd'], provider: 'password', mode, returnTo: safeReturnTo(input.return_to, c.get('config')), detail });
  return signInReply(c, outcome, { status, formPage });
}

/** Form posts get the page back with the error; JSON clients get the JSON error. */
function formAware(handler: (c: Context<AppEnv>, body: { kind: BodyKind; data: Credentials }) => Promise<Response>) {
  return async (c: Context<AppEnv>) => {
    let body: { kind: BodyKind; data: Credentials } | undefined;
    try {
      body = await readBody(c, credentialsSchema);
      return await handler(c, body);
    } catch (e) {
      const isForm = (c.req.header('content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
      const err = toApiError(e);
      if (isForm && (err.code === 'email_not_verified' || err.code === 'mail_unavailable')) {
        // Pages of their own: the resend button, or "we could not send the email".
        const views = await import('./mailed-link-views');
        const returnTo = safeReturnTo(body?.data.return_to, c.get('config'));
        return err.code === 'mail_unavailable' || !body ? views.errorPage(c, err) : views.emailNotVerifiedPage(c, body.data.email, returnTo);
      }
      if (!isForm || err.status >= 500) throw e;
      if (err.extra.retryAfter !== undefined) c.header('retry-after', String(err.extra.retryAfter));
      return renderLoginPage(c, {
        error: err.description,
        view: c.req.path.endsWith('/register') ? 'register' : 'login',
        email: body?.data.email,
        returnTo: safeReturnTo(body?.data.return_to, c.get('config')),
        status: err.status,
      });
    }
  };
}

export const passwordRoutes = new Hono<AppEnv>()
  .post(
    '/register',
    sameOrigin({ always: true }),
    formAware(async (c, { kind, data }) => {
      const config = c.get('config');
      requirePasswordLogin(c);
      if (config.REGISTRATION === 'closed') throw new ApiError('forbidden', 'Registration is closed on this gateway.');
      await checkRateLimit(c, 'register');
      if (!emailDomainAllowed(data.email, config)) throw new ApiError('forbidden', 'Accounts with this email domain are not allowed.');
      const password = normalisePassword(data.password);
      const problem = checkNewPassword(password, config.PASSWORD_MIN_LENGTH);
      if (problem) throw badRequest(problem.message);
      await assertNotBreached(password, config.BREACHED_PASSWORD_CHECK);
      const passwordHash = await hashPassword(password);
      if (config.EMAIL_VERIFICATION === 'required') {
        // The same answer for a new and a taken address (auth/email-verification.ts); no session.
        const { registerPendingAccount } = await import('../auth/email-verification');
        await registerPendingAccount(c, { email: data.email, name: data.name, passwordHash, returnTo: data.return_to === undefined ? undefined : safeReturnTo(data.return_to, config) });
        const { checkEmailAnswer } = await import('./mailed-link-views');
        return checkEmailAnswer(c, kind, 'register', data.email, safeReturnTo(data.return_to, config));
      }
      const user = await createUser(c.env.DB, { email: data.email, emailVerified: false, name: data.name, passwordHash }, now());
      if (!user) {
        await recordEvent(c, { event: 'register', outcome: 'failure', detail: { reason: 'email_taken' } });
        throw new ApiError('conflict', 'An account with this email already exists.');
      }
      await recordEvent(c, { event: 'register', outcome: 'success', userId: user.id });
      if (config.EMAIL_VERIFICATION === 'optional') (await import('../auth/email-verification')).offerVerification(c, user);
      return finishSignIn(c, user, kind, data, 201);
    }),
  )
  .post(
    '/login',
    sameOrigin({ always: true }),
    formAware(async (c, { kind, data }) => {
      requirePasswordLogin(c);
      await checkRateLimit(c, 'login');
      const attempt = await reserveLoginAttempt(c, data.email);
      const password = normalisePassword(data.password);
      const user = await findUserByEmail(c.env.DB, data.email);
      const failed = new ApiError('invalid_credentials', 'The email or password is incorrect.');
      if (!user?.passwordHash) {
        await verifyDummy(password); // same work as a real check: timing does not reveal accounts
        await recordEvent(c, { event: 'login', outcome: 'failure', userId: user?.id ?? null, detail: { reason: 'unknown_email' } });
        await recordLoginFailure(c, attempt, null);
        throw failed;
      }
      const result = await verifyPassword(password, user.passwordHash);
      if (!result.ok) {
        await recordEvent(c, { event: 'login', outcome: 'failure', userId: user.id, detail: { reason: 'wrong_password' } });
        await recordLoginFailure(c, attempt, user.id);
        throw failed;
      }
      if (user.disabledAt !== null) {
        await recordEvent(c, { event: 'login', outcome: 'failure', userId: user.id, detail: { reason: 'disabled' } });
        throw new ApiError('forbidden', 'This account is disabled.');
      }
      if (c.get('config').EMAIL_VERIFICATION === 'required' && !user.emailVerified) {
        await recordEvent(c, { event: 'login', outcome: 'failure', userId: user.id, detail: { reason: 'email_not_verified' } });
        throw new ApiError('email_not_verified', 'Confirm your email address first: open the link we emailed you. No email? Ask for a new one.', {
          fields: { resend: `${c.get('config').AUTH_PREFIX}/email/verify/resend` },
        });
      }
      await recordLoginSuccess(c, data.email);
      if (result.needsRehash) await updatePasswordHash(c.env.DB, user.id, await hashPassword(password), now());
      return finishSignIn(c, user, kind, data, 200);
    }),
  );

/**
 * The sign-in that follows a confirmed verification link (routes/email-verification.ts): the
 * password was checked there; the rest goes through {@link finishSignIn}, so that every password
 * sign-in passes the same gates (a second factor still owed, for one).
 */
export function signInAfterConfirmation(c: Context<AppEnv>, user: User, kind: BodyKind, input: Pick<Credentials, 'session' | 'return_to'>) {
  // A form gets a page saying who is now signed in, with the way on, rather than a silent
  // redirect into the app: the person has just left their inbox and should know where they are.
  const returnTo = safeReturnTo(input.return_to, c.get('config'));
  const signedInPage = async () => (await import('./mailed-link-views')).signedInPage(c, user.email, returnTo);
  return finishSignIn(c, user, kind, input, 200, { via: 'email_verification' }, signedInPage);
}
