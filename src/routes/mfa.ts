/**
 * Finishing a sign-in that owes a second factor (auth/mfa-pending.ts):
 *
 * - `GET  /mfa`         the page: a code form, or (MFA_REQUIRED_ROLES) setting up an authenticator app
 * - `POST /mfa`         `code` (form or JSON; JSON may name the state with `mfa_token`): the
 *                       session starts with `amr` [first factor, "otp", "mfa"]
 * - `POST /mfa/enrol`   JSON, for API clients that must set up an app first: its key and URI
 *
 * Wrong codes count against the account's attempt limit; a missing, expired or used pending state
 * is a clear page (browsers) or `401 invalid_token` (JSON). No token exists before this succeeds.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { completePendingSignIn, finishPendingSignIn, pendingUser, readPendingSignIn, signedInAfterPending, type ReadPending } from '../auth/mfa-pending';
import type { AppEnv } from '../env';
import { bodyKind, readBody } from '../http/body';
import { setSessionCookies } from '../http/cookies';
import { ApiError, badRequest } from '../http/errors';
import { toApiError } from '../middleware/error-handler';
import { checkRateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import type { User } from '../storage/users';
import { renderPage, type PageStatus } from '../ui/render';
import { nowSeconds as now } from '../util/time';

const mfaSchema = v.strictObject(
  {
    code: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))),
    mfa_token: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))),
  },
  'is not a known field',
);
const enrolSchema = v.strictObject({ mfa_token: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))) }, 'is not a known field');

const loginPath = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/login`;
const mfaPath = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/mfa`;

/** The page for a browser whose pending sign-in is missing, expired or used: start again. */
async function noPendingPage(c: Context<AppEnv>, message: string) {
  const { MessagePage } = await import('../ui/second-factor-pages');
  return renderPage(c, (nonce) => MessagePage({ nonce, title: 'Sign in again', message, href: loginPath(c), label: 'Back to sign-in', error: true }), 401);
}

async function enrolment(c: Context<AppEnv>, user: User) {
  const factors = await import('../auth/second-factor');
  return (await factors.currentTotpEnrolment(c, user)) ?? factors.startTotpEnrolment(c, user);
}

async function page(c: Context<AppEnv>, pending: ReadPending, error: string | null = null, status: PageStatus = 200) {
  const ui = await import('../ui/second-factor-pages');
  if (pending.purpose === 'enrol') {
    const user = await pendingUser(c, pending);
    const { secret, uri } = await enrolment(c, user);
    const qr = await (await import('../ui/qr-svg')).qrSvg(uri);
    const config = c.get('config');
    return renderPage(
      c,
      (nonce) =>
        ui.TotpEnrolPage({ nonce, appName: config.APP_NAME, qr, secret, action: mfaPath(c), error, intro: 'Your account needs a second factor before you can sign in. Set up an authenticator app to continue.', cancelHref: loginPath(c) }),
      status,
    );
  }
  return renderPage(
    c,
    (nonce) =>
      ui.CodeFormPage({
        nonce,
        title: 'Two-step verification',
        intro: 'Enter the 6-digit code from your authenticator app, or one of your recovery codes.',
        action: mfaPath(c),
        error,
        code: true,
        submitLabel: 'Verify',
        links: [{ href: loginPath(c), label: 'Start over' }],
      }),
    status,
  );
}

async function complete(c: Context<AppEnv>, pending: ReadPending, code: string): Promise<Response> {
  const user = await pendingUser(c, pending);
  const factors = await import('../auth/second-factor');
  if (pending.purpose === 'verify') {
    await factors.verifySecondFactor(c, user, code);
    // A recovery code is a one-time password too (RFC 8176 `otp`).
    return completePendingSignIn(c, pending, ['otp']);
  }
  const { recoveryCodes } = await factors.confirmTotpEnrolment(c, user, code);
  const tokens = await finishPendingSignIn(c, pending, user, ['otp']);
  const codes = recoveryCodes ?? [];
  if (pending.mode === 'form') {
    setSessionCookies(c, tokens.accessToken, tokens.refreshToken, tokens.sessionExpiresAt - now());
    const { RecoveryCodesPage } = await import('../ui/second-factor-pages');
    return renderPage(c, (nonce) => RecoveryCodesPage({ nonce, intro: 'Your authenticator app is on, and you are signed in.', codes, continueHref: pending.returnTo, continueLabel: 'Continue' }));
  }
  // JSON: the usual signed-in answer plus the recovery codes, shown this once.
  const answer = (await signedInAfterPending(c, pending, user, tokens).json()) as Record<string, unknown>;
  return c.json({ ...answer, recovery_codes: codes }, 200);
}

export const mfaRoutes = new Hono<AppEnv>()
  .get('/mfa', async (c) => {
    let pending;
    try {
      pending = await readPendingSignIn(c);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'invalid_token') return noPendingPage(c, e.description);
      throw e;
    }
    return page(c, pending);
  })
  .post('/mfa', sameOrigin({ always: true }), async (c) => {
    const form = bodyKind(c) === 'form';
    let pending: ReadPending | undefined;
    try {
      await checkRateLimit(c, 'login');
      const { data } = await readBody(c, mfaSchema);
      pending = await readPendingSignIn(c, data.mfa_token);
      if (!data.code) throw badRequest('Field "code": is required');
      return await complete(c, pending, data.code);
    } catch (e) {
      const err = toApiError(e);
      if (!form || err.status >= 500) throw e;
      if (err.code === 'invalid_token') return noPendingPage(c, err.description);
      // A bad form body (or a burst limit) before the state was read: the page again, with the error.
      if (!pending) {
        try {
          pending = await readPendingSignIn(c);
        } catch {
          return noPendingPage(c, err.description);
        }
      }
      if (err.extra.retryAfter !== undefined) c.header('retry-after', String(err.extra.retryAfter));
      return page(c, pending, err.description, err.status);
    }
  })
  .post('/mfa/enrol', sameOrigin({ always: true }), async (c) => {
    const { data } = await readBody(c, enrolSchema);
    const pending = await readPendingSignIn(c, data.mfa_token);
    if (pending.purpose !== 'enrol') throw new ApiError('conflict', 'This account already has a second factor: send its code to /mfa.');
    const { secret, uri } = await enrolment(c, await pendingUser(c, pending));
    c.header('cache-control', 'no-store');
    return c.json({ secret, otpauth_uri: uri, expires_at: pending.expiresAt });
  });
