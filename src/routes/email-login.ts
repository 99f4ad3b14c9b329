/**
 * Sign-in by email code (`EMAIL_LOGIN=enabled`; rules in auth/email-code.ts):
 *
 * - `GET  /login/email-code`          the page (step one: the address)
 * - `POST /login/email-code`          `{"email"}`: sends a code if the address has an account; 202 either way (a form gets step two)
 * - `POST /login/email-code/verify`   `{"email","code","session"?}`: signs in like `POST /login` (JSON token or cookie mode, or a form's 303 to `return_to`),
 *                                      second factor included (auth/sign-in.ts)
 *
 * Mounted before `/login/:provider` (app.ts), which would otherwise take `email-code` for a provider id.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { CODE_DIGITS, emailLoginEnabled, requestEmailCode, verifyEmailCode } from '../auth/email-code';
import { emailInput } from '../auth/email-address';
import { signIn } from '../auth/sign-in';
import type { AppEnv } from '../env';
import { readBody, type BodyKind } from '../http/body';
import { ApiError, toApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { checkRateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import type { EmailCodePageProps } from '../ui/email-code-page';
import { renderPage, type PageStatus } from '../ui/render';
import { signInReply } from './sign-in-reply';

const returnTo = v.optional(v.pipe(v.string('must be a string'), v.maxLength(2048, 'is too long')));
const requestSchema = v.strictObject({ email: emailInput, return_to: returnTo }, 'is not a known field');
const verifySchema = v.strictObject(
  {
    email: emailInput,
    code: v.pipe(v.string('must be a string'), v.trim(), v.regex(new RegExp(`^[0-9]{${CODE_DIGITS}}$`), `must be the ${CODE_DIGITS} digits from the email`)),
    session: v.optional(v.picklist(['cookie', 'token'], 'must be "cookie" or "token"')),
    return_to: returnTo,
  },
  'is not a known field',
);

const SENT = 'If an account uses this address, a code is on its way. It works for 10 minutes.';

/** The page is loaded on first use: only this rare sign-in needs it. */
async function page(c: Context<AppEnv>, props: Omit<EmailCodePageProps, 'nonce' | 'brand' | 'prefix' | 'digits'>, status: PageStatus = 200) {
  const { EmailCodePage } = await import('../ui/email-code-page');
  return renderPage(c, (nonce, brand) => EmailCodePage({ nonce, brand, prefix: c.get('config').AUTH_PREFIX, digits: CODE_DIGITS, ...props }), status);
}

/** A form post that fails gets the page back with the error; JSON clients get the JSON error. */
function formAware<S extends v.GenericSchema<unknown, { email: string; return_to?: string }>>(schema: S, step: 'email' | 'code', run: (c: Context<AppEnv>, data: v.InferOutput<S>, kind: BodyKind) => Promise<Response>) {
  return async (c: Context<AppEnv>) => {
    let body: { kind: BodyKind; data: v.InferOutput<S> } | undefined;
    try {
      body = await readBody(c, schema);
      return await run(c, body.data, body.kind);
    } catch (e) {
      const isForm = (c.req.header('content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
      const err = toApiError(e);
      if (!isForm || err.code === 'server_error' || err.code === 'not_found') throw e;
      if (err.extra.retryAfter !== undefined) c.header('retry-after', String(Math.max(1, Math.ceil(err.extra.retryAfter))));
      const data = body?.data;
      return page(c, { step: data ? step : 'email', email: data?.email, returnTo: safeReturnTo(data?.return_to, c.get('config')), error: err.description }, err.status);
    }
  };
}

export const emailLoginRoutes = new Hono<AppEnv>()
  .get('/login/email-code', async (c) => {
    if (!emailLoginEnabled(c)) throw new ApiError('not_found', 'Sign-in by email code is not enabled on this gateway.');
    return page(c, { step: 'email', returnTo: safeReturnTo(c.req.query('return_to'), c.get('config')) });
  })
  .post(
    '/login/email-code',
    sameOrigin({ always: true }),
    formAware(requestSchema, 'email', async (c, data, kind) => {
      await checkRateLimit(c, 'login');
      await requestEmailCode(c, data.email);
      if (kind === 'json') return c.json({ status: 'code_sent_if_account' }, 202);
      return page(c, { step: 'code', email: data.email, returnTo: safeReturnTo(data.return_to, c.get('config')), notice: SENT });
    }),
  )
  .post(
    '/login/email-code/verify',
    sameOrigin({ always: true }),
    formAware(verifySchema, 'code', async (c, data, kind) => {
      await checkRateLimit(c, 'login');
      const user = await verifyEmailCode(c, data.email, data.code);
      // A mailed code is one factor, as a password is: a second factor is still owed where one is.
      const mode = kind === 'form' ? 'form' : data.session === 'cookie' ? 'cookie' : 'token';
      return signInReply(c, await signIn(c, { user, amr: ['email'], provider: 'email_code', mode, returnTo: safeReturnTo(data.return_to, c.get('config')) }));
    }),
  );
