/**
 * The account's second factors, for browsers (plain forms; README "Second factors"):
 *
 * - `GET  /account/totp`             set up an authenticator app: QR code and key, then a code
 * - `POST /account/totp/confirm`     the first code turns it on (and shows recovery codes once)
 * - `POST /account/totp/remove`      remove it (and the recovery codes, unless a passkey remains)
 * - `POST /account/recovery-codes`   ten new recovery codes, replacing the old ones
 *
 * Each needs a recent sign-in (`RECENT_AUTH_SECONDS`): otherwise the browser is sent to the
 * step-up page and back. The TOTP code and the QR renderer are loaded only here (dynamic import).
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { currentUser, sessionsOf } from '../auth/authenticate';
import type { AppEnv } from '../env';
import { stepUpSession } from '../auth/sessions';
import { hasSecondFactor, secondFactors } from '../auth/second-factor-status';
import { readBody } from '../http/body';
import { setAccessCookie } from '../http/cookies';
import { ApiError, toApiError } from '../http/errors';
import { browserAuth, needsRecentSignIn } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { findSession } from '../storage/sessions';
import type { User } from '../storage/users';
import { renderPage, type PageStatus } from '../ui/render';
import { nowSeconds as now } from '../util/time';
import { backToAccount } from './account-overview';

const codeSchema = v.strictObject({ code: v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long')) }, 'is not a known field');
const emptySchema = v.strictObject({}, 'is not a known field');

const accountPath = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/account`;
const totpPath = (c: Context<AppEnv>) => `${accountPath(c)}/totp`;

async function enrolPage(c: Context<AppEnv>, user: User, enrolment: { secret: string; uri: string }, error: string | null = null, status: PageStatus = 200) {
  const [{ qrSvg }, { TotpEnrolPage }] = await Promise.all([import('../ui/qr-svg'), import('../ui/second-factor-pages')]);
  const qr = await qrSvg(enrolment.uri);
  const config = c.get('config');
  return renderPage(
    c,
    (nonce, brand) => TotpEnrolPage({ nonce, brand, appName: config.APP_NAME, qr, secret: enrolment.secret, action: `${totpPath(c)}/confirm`, error, cancelHref: accountPath(c) }),
    status,
  );
}

async function recoveryCodesPage(c: Context<AppEnv>, codes: string[], intro: string) {
  const { RecoveryCodesPage } = await import('../ui/second-factor-pages');
  return renderPage(c, (nonce, brand) => RecoveryCodesPage({ nonce, brand, intro, codes, continueHref: accountPath(c), continueLabel: 'Back to your account' }));
}

export const secondFactorRoutes = new Hono<AppEnv>()
  .get('/account/totp', browserAuth(totpPath), async (c) => {
    const reauth = needsRecentSignIn(c, c.get('user'), totpPath(c));
    if (reauth) return reauth;
    const user = await currentUser(c);
    // Only an authenticator app already on stops this: a passkey user may add one too.
    if ((await secondFactors(c.env.DB, user.id, c.get('config'))).totp) {
      return backToAccount(c, 'totp_already_on');
    }
    // The set-up in progress if there is one: a GET never replaces it (auth/second-factor.ts).
    const { totpEnrolment } = await import('../auth/second-factor');
    return enrolPage(c, user, await totpEnrolment(c, user));
  })
  .post('/account/totp/confirm', sameOrigin({ always: true }), browserAuth(totpPath), async (c) => {
    const auth = c.get('user');
    const reauth = needsRecentSignIn(c, auth, totpPath(c));
    if (reauth) return reauth;
    const user = await currentUser(c);
    const { data } = await readBody(c, codeSchema);
    const factors = await import('../auth/second-factor');
    let result;
    try {
      result = await factors.confirmTotpEnrolment(c, user, data.code);
    } catch (e) {
      const err = toApiError(e);
      const enrolment = err.status < 500 ? await factors.currentTotpEnrolment(c, user) : null;
      if (!enrolment) throw e;
      if (err.extra.retryAfter !== undefined) c.header('retry-after', String(err.extra.retryAfter));
      return enrolPage(c, user, enrolment, err.description, err.status);
    }
    // The code just given proves the app on top of a recent sign-in: this session is now
    // multi-factor (a route with require = ["mfa"] opens without another step-up).
    const session = await findSession(sessionsOf(c, auth.id), auth.sessionId);
    if (session) {
      const amr = [...new Set([...auth.amr.filter((m) => m !== 'mfa'), 'otp', 'mfa'])];
      const stepped = await stepUpSession(c, user, session.id, amr);
      setAccessCookie(c, stepped.accessToken, session.expiresAt - now());
    }
    if (result.recoveryCodes) return recoveryCodesPage(c, result.recoveryCodes, 'Your authenticator app is on.');
    return backToAccount(c, 'totp_on');
  })
  .post('/account/totp/remove', sameOrigin({ always: true }), browserAuth(accountPath), async (c) => {
    const reauth = needsRecentSignIn(c, c.get('user'), accountPath(c));
    if (reauth) return reauth;
    await readBody(c, emptySchema);
    const user = await currentUser(c);
    const { removeSecondFactors } = await import('../auth/second-factor');
    const removed = await removeSecondFactors(c, user);
    if (!removed.totp) throw new ApiError('not_found', 'No authenticator app is set up.');
    return backToAccount(c, 'totp_removed');
  })
  .post('/account/recovery-codes', sameOrigin({ always: true }), browserAuth(accountPath), async (c) => {
    const reauth = needsRecentSignIn(c, c.get('user'), accountPath(c));
    if (reauth) return reauth;
    await readBody(c, emptySchema);
    const user = await currentUser(c);
    if (!(await hasSecondFactor(c.env.DB, user.id, c.get('config')))) throw new ApiError('conflict', 'Recovery codes stand in for a second factor: set one up first.');
    const { regenerateRecoveryCodes } = await import('../auth/second-factor');
    return recoveryCodesPage(c, await regenerateRecoveryCodes(c, user), 'New recovery codes: the old ones no longer work.');
  });
