/**
 * Finishing a sign-in that owes a second factor (auth/mfa-pending.ts reads it, auth/sign-in.ts completes it):
 *
 * - `GET  /mfa`         the page: a code form, or (MFA_REQUIRED_ROLES) setting up an authenticator app
 * - `POST /mfa`         `code` (form or JSON; JSON may name the state with `mfa_token`): the
 *                       session starts with `amr` [first factor, "otp", "mfa"]
 * - `POST /mfa/enrol`   JSON, for API clients that must set up an app first: its key and URI
 * - `POST /mfa/passkey/options`, `POST /mfa/passkey` `{credential, mfa_token?}`: a passkey as
 *                       the factor; the session starts with `amr` [first factor, "hwk"|"swk", "mfa"]
 *
 * Wrong codes count against the account's attempt limit; a missing, expired or used pending state
 * is a clear page (browsers) or `401 invalid_token` (JSON). No token exists before this succeeds.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { pendingUser, readPendingSignIn, type ReadPending } from '../auth/mfa-pending';
import { completeSignIn } from '../auth/sign-in';
import type { AppEnv } from '../env';
import { bodyKind, readBody } from '../http/body';
import { ApiError, badRequest, toApiError } from '../http/errors';
import { checkRateLimit, rateLimit } from '../middleware/rate-limit';
import { sameOrigin } from '../middleware/same-origin';
import { secondFactors } from '../auth/second-factor-status';
import type { User } from '../storage/users';
import { renderPage, type PageStatus } from '../ui/render';
import { signInReply } from './sign-in-reply';

const mfaSchema = v.strictObject(
  {
    code: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))),
    mfa_token: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))),
  },
  'is not a known field',
);
const passkeyOptionsSchema = v.strictObject({ mfa_token: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))) }, 'is not a known field');
const enrolSchema = v.strictObject({ mfa_token: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))) }, 'is not a known field');

const loginPath = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/login`;
const mfaPath = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/mfa`;

/** The page for a browser whose pending sign-in is missing, expired or used: start again. */
async function noPendingPage(c: Context<AppEnv>, message: string) {
  const { MessagePage } = await import('../ui/second-factor-pages');
  return renderPage(c, (nonce, brand) => MessagePage({ nonce, brand, title: 'Sign in again', message, href: loginPath(c), label: 'Back to sign-in', error: true }), 401);
}

async function enrolment(c: Context<AppEnv>, user: User) {
  return (await import('../auth/second-factor')).totpEnrolment(c, user);
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
      (nonce, brand) =>
        ui.TotpEnrolPage({ nonce, brand, appName: config.APP_NAME, qr, secret, action: mfaPath(c), error, intro: 'Your account needs a second factor before you can sign in. Set up an authenticator app to continue.', cancelHref: loginPath(c) }),
      status,
    );
  }
  const factors = await secondFactors(c.env.DB, pending.userId, c.get('config'));
  const prefix = c.get('config').AUTH_PREFIX;
  // A sign-in that began with a passkey (without user verification) needs another kind of factor.
  const passkey = factors.passkeys > 0 && !usedPasskey(pending) ? { prefix, options: `${mfaPath(c)}/passkey/options`, verify: `${mfaPath(c)}/passkey`, returnTo: pending.returnTo } : undefined;
  const intro = factors.totp
    ? `Enter the 6-digit code from your authenticator app, or one of your recovery codes${passkey ? ', or use your passkey' : ''}.`
    : passkey
      ? 'Use your passkey, or enter one of your recovery codes.'
      : 'Your passkey did not verify you (no PIN or biometrics): enter one of your recovery codes.';
  return renderPage(
    c,
    (nonce, brand) =>
      ui.CodeFormPage({
        nonce,
        brand,
        title: 'Two-step verification',
        intro,
        action: mfaPath(c),
        error,
        code: true,
        submitLabel: 'Verify',
        links: [{ href: loginPath(c), label: 'Start over' }],
        passkey,
      }),
    status,
  );
}

/** The pending state a passkey answers, for a `verify` sign-in only. */
async function pendingForPasskey(c: Context<AppEnv>, mfaToken: string | undefined): Promise<ReadPending> {
  const pending = await readPendingSignIn(c, mfaToken);
  if (pending.purpose !== 'verify') throw new ApiError('forbidden', 'This account must set up a second factor first.');
  if (usedPasskey(pending)) throw new ApiError('forbidden', 'This sign-in began with a passkey: the second factor must be a code from your authenticator app or a recovery code.');
  return pending;
}

const usedPasskey = (pending: { amr: readonly string[] }) => pending.amr.some((m) => m === 'hwk' || m === 'swk');

async function complete(c: Context<AppEnv>, pending: ReadPending, code: string): Promise<Response> {
  const user = await pendingUser(c, pending);
  const factors = await import('../auth/second-factor');
  if (pending.purpose === 'verify') {
    await factors.verifySecondFactor(c, user, code);
    // A recovery code is a one-time password too (RFC 8176 `otp`).
    return signInReply(c, await completeSignIn(c, pending, ['otp']));
  }
  const { recoveryCodes } = await factors.confirmTotpEnrolment(c, user, code);
  const codes = recoveryCodes ?? [];
  // The recovery codes, shown this once: on a page (forms) or in the signed-in JSON.
  return signInReply(c, await completeSignIn(c, pending, ['otp']), {
    fields: { recovery_codes: codes },
    formPage: async () => {
      const { RecoveryCodesPage } = await import('../ui/second-factor-pages');
      return renderPage(c, (nonce, brand) => RecoveryCodesPage({ nonce, brand, intro: 'Your authenticator app is on, and you are signed in.', codes, continueHref: pending.returnTo, continueLabel: 'Continue' }));
    },
  });
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
  // A passkey as the second factor (JSON, from the page's script or an API client): options
  // bound to the pending user, then the assertion completes the sign-in with amr [first, key, mfa].
  .post('/mfa/passkey/options', sameOrigin({ always: true }), rateLimit('passkey'), async (c) => {
    const { data } = await readBody(c, passkeyOptionsSchema);
    const pending = await pendingForPasskey(c, data.mfa_token);
    const passkeys = await import('../auth/passkeys');
    if (!passkeys.passkeysAvailable(c.get('config'))) throw new ApiError('forbidden', 'Passkeys are not enabled on this gateway.');
    c.header('cache-control', 'no-store');
    return c.json(await passkeys.authenticationOptions(c, pending.userId));
  })
  .post('/mfa/passkey', sameOrigin({ always: true }), async (c) => {
    const passkeys = await import('../auth/passkeys');
    const schema = v.strictObject({ credential: passkeys.authenticationCredentialSchema, mfa_token: v.optional(v.pipe(v.string(), v.maxLength(64, 'is too long'))) }, 'is not a known field');
    try {
      const { data } = await readBody(c, schema);
      const pending = await pendingForPasskey(c, data.mfa_token);
      if (!passkeys.passkeysAvailable(c.get('config'))) throw new ApiError('forbidden', 'Passkeys are not enabled on this gateway.');
      const { passkey } = await passkeys.verifyPasskeyForUser(c, pending.userId, data.credential);
      // Possession of the key is the second factor (hwk/swk); completeSignIn adds mfa.
      return await signInReply(c, await completeSignIn(c, pending, passkeys.passkeyAmr({ deviceType: passkey.deviceType, userVerified: false }).filter((m) => m !== 'user')));
    } catch (e) {
      const err = toApiError(e);
      // A refused assertion counts against the per-IP limit, as on the passkey sign-in.
      if (err.status === 401 && err.code === 'invalid_credentials') await checkRateLimit(c, 'passkey');
      throw e;
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
