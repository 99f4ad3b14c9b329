/**
 * Step-up: the signed-in user authenticates again, more strongly or more recently, and goes
 * back where they were (README "Second factors", "Step-up").
 *
 * - `GET  /step-up?return_to=`  the page (a browser without a session is sent to sign in first)
 * - `POST /step-up`             form or JSON: `password` and/or `code`, `return_to`
 * - `POST /step-up/passkey/options`, `POST /step-up/passkey` `{credential}`: a passkey instead
 *   (amr gains hwk/swk, and mfa with user verification or after a recent first factor)
 *
 * What is asked: a user with a second factor gives a code (TOTP or recovery), plus the password
 * unless the session's sign-in is within `RECENT_AUTH_SECONDS` (a recent first factor stands);
 * a user without one gives the password. The session keeps its id and refresh token; its `amr`
 * and `auth_time` are replaced (`amr` gains `pwd`, and `otp` + `mfa` with a code), and a new
 * access token carries them. A user with neither a password nor a factor signs in again.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { currentUser, sessionsOf } from '../auth/authenticate';
import { recordEvent } from '../auth/events';
import { recordLoginFailure, recordLoginSuccess, reserveLoginAttempt } from '../auth/login-throttle';
import { isRecentSignIn } from '../auth/recent-sign-in';
import { secondFactors } from '../auth/second-factor-status';
import { stepUpSession } from '../auth/sessions';
import type { AppEnv, AuthUser } from '../env';
import { bodyKind, readBody } from '../http/body';
import { setAccessCookie } from '../http/cookies';
import { ApiError, badRequest, toApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { checkRateLimit, rateLimit } from '../middleware/rate-limit';
import { browserAuth, requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { normalisePath } from '../proxy/normalise-path';
import { matchRoute, routeTable } from '../proxy/route-table';
import { findSession } from '../storage/sessions';
import type { User } from '../storage/users';
import { renderPage, type PageStatus } from '../ui/render';
import { isConsolePath } from './console-kit';
import { nowSeconds as now } from '../util/time';

const stepUpSchema = v.strictObject(
  {
    password: v.optional(v.pipe(v.string('must be a string'), v.maxLength(1024, 'is too long'))),
    code: v.optional(v.pipe(v.string('must be a string'), v.maxLength(64, 'is too long'))),
    return_to: v.optional(v.pipe(v.string('must be a string'), v.maxLength(2048, 'is too long'))),
  },
  'is not a known field',
);

interface Ask {
  password: boolean;
  code: boolean;
  /** The user has a passkey to offer (it steps up on its own: see the passkey route below). */
  passkey: boolean;
  /** The route `return_to` leads to requires a factor the user does not have. */
  missing: 'mfa' | 'passkey' | null;
}

/** The ROUTES entry a same-origin `return_to` leads to, if any. */
function routeOf(c: Context<AppEnv>, returnTo: string) {
  const config = c.get('config');
  try {
    const url = new URL(returnTo, config.PUBLIC_URL);
    if (url.origin !== config.PUBLIC_URL) return undefined;
    return matchRoute(routeTable(config.ROUTES), normalisePath(url.pathname))?.route.config;
  } catch {
    return undefined;
  }
}

/** The pathname of a same-origin `return_to`, or null. */
function ownPath(c: Context<AppEnv>, returnTo: string): string | null {
  const config = c.get('config');
  try {
    const url = new URL(returnTo, config.PUBLIC_URL);
    return url.origin === config.PUBLIC_URL ? url.pathname : null;
  } catch {
    return null;
  }
}

/** The operators' console asks for a second factor (or a passkey, which is one here). */
const leadsToConsole = (c: Context<AppEnv>, returnTo: string) => {
  const path = ownPath(c, returnTo);
  return path !== null && isConsolePath(path, c.get('config').AUTH_PREFIX);
};

/**
 * What the page a same-origin `return_to` leads to requires (for a clear message only): the
 * `require` of its ROUTES entry, or a second factor for the console.
 */
function routeRequires(c: Context<AppEnv>, returnTo: string): readonly string[] {
  if (leadsToConsole(c, returnTo)) return ['mfa'];
  return routeOf(c, returnTo)?.require ?? [];
}

async function whatToAsk(c: Context<AppEnv>, user: User, auth: AuthUser, returnTo: string): Promise<Ask> {
  const factors = await secondFactors(c.env.DB, user.id, c.get('config'));
  const factor = factors.totp || factors.passkeys > 0;
  const passkey = factors.passkeys > 0;
  const requires = routeRequires(c, returnTo);
  // `require = ["passkey"]` is met by a passkey (amr hwk/swk): one the user has is offered here.
  const missing = requires.includes('mfa') && !factor ? 'mfa' : requires.includes('passkey') && !passkey && !usedPasskey(auth) ? 'passkey' : null;
  const password = user.passwordHash !== null && (!factor || !isRecentSignIn(auth.authTime, now(), c.get('config').RECENT_AUTH_SECONDS));
  return { password, code: factor, passkey, missing };
}

/**
 * Where "Cancel" leads: back to `return_to`, unless that is the very page that asked for the
 * step-up (a route with `require` or `max_auth_age`), which would only send the browser here again: then the
 * account page.
 */
function cancelHref(c: Context<AppEnv>, returnTo: string): string {
  const route = routeOf(c, returnTo);
  const asks = (route?.require ?? []).length > 0 || route?.max_auth_age !== undefined || leadsToConsole(c, returnTo);
  return asks ? `${c.get('config').AUTH_PREFIX}/account` : returnTo;
}

async function stepUpPage(c: Context<AppEnv>, user: User, ask: Ask, returnTo: string, error: string | null = null, status: PageStatus = 200) {
  const ui = await import('../ui/second-factor-pages');
  const prefix = c.get('config').AUTH_PREFIX;
  const back = encodeURIComponent(returnTo);
  if (ask.missing === 'mfa') {
    const message = 'This page needs a second factor, and your account has none yet. Set up an authenticator app, then open the page again.';
    return renderPage(c, (nonce, brand) => ui.MessagePage({ nonce, brand, title: 'A second factor is needed', message, href: `${prefix}/account/totp`, label: 'Set up an authenticator app' }), 403);
  }
  if (ask.missing === 'passkey') {
    const message = 'This page needs a passkey, and your account has none yet. Add one on your account page, then open the page again.';
    return renderPage(c, (nonce, brand) => ui.MessagePage({ nonce, brand, title: 'A passkey is needed', message, href: `${prefix}/account`, label: 'Add a passkey' }), 403);
  }
  if (!ask.password && !ask.code) {
    const message = 'For this page, please sign in again.';
    return renderPage(c, (nonce, brand) => ui.MessagePage({ nonce, brand, title: 'Sign in again', message, href: `${prefix}/login?return_to=${back}`, label: 'Sign in again' }), 200);
  }
  const intro = ask.code
    ? ask.password
      ? 'To continue, confirm your password and enter a code from your authenticator app (or a recovery code).'
      : 'To continue, enter a code from your authenticator app (or a recovery code).'
    : 'To continue, confirm your password.';
  const passkey = ask.passkey ? { prefix, options: `${prefix}/step-up/passkey/options`, verify: `${prefix}/step-up/passkey`, returnTo } : undefined;
  return renderPage(
    c,
    (nonce, brand) =>
      ui.CodeFormPage({
        nonce,
        brand,
        title: 'Confirm it’s you',
        account: user.email,
        cancelHref: cancelHref(c, returnTo),
        intro: passkey ? `Use your passkey. Or: ${intro.charAt(0).toLowerCase()}${intro.slice(1)}` : intro,
        action: `${prefix}/step-up`,
        error,
        hidden: { return_to: returnTo },
        password: ask.password,
        code: ask.code,
        submitLabel: 'Continue',
        passkey,
      }),
    status,
  );
}

/** Checks what was asked; returns the session's new `amr`. Wrong answers count against their limits. */
async function reauthenticate(c: Context<AppEnv>, user: User, auth: AuthUser, ask: Ask, input: v.InferOutput<typeof stepUpSchema>): Promise<string[]> {
  if (!ask.password && !ask.code) throw new ApiError('forbidden', 'This account cannot step up here: sign in again.');
  if (ask.password && !input.password) throw badRequest('Field "password": is required');
  if (ask.code && !input.code) throw badRequest('Field "code": is required');
  const amr = new Set(auth.amr.filter((m) => m !== 'mfa'));
  if (ask.password) {
    const [{ verifyPassword }, { normalisePassword }] = await Promise.all([import('../auth/password-hash'), import('../auth/password-policy')]);
    const attempt = await reserveLoginAttempt(c, user.email);
    const result = await verifyPassword(normalisePassword(input.password!), user.passwordHash!);
    if (!result.ok) {
      await recordEvent(c, { event: 'step_up', outcome: 'failure', userId: user.id, detail: { reason: 'wrong_password' } });
      await recordLoginFailure(c, attempt, user.id);
      throw new ApiError('invalid_credentials', 'The password is incorrect.');
    }
    await recordLoginSuccess(c, user.email);
    amr.add('pwd');
  }
  if (ask.code) {
    const { verifySecondFactor } = await import('../auth/second-factor');
    await verifySecondFactor(c, user, input.code!);
    amr.add('otp').add('mfa');
  }
  return [...amr];
}

const usedPasskey = (auth: { amr: readonly string[] }) => auth.amr.some((m) => m === 'hwk' || m === 'swk');

/**
 * The session's new `amr` after a passkey step-up. With user verification the passkey is two
 * factors by itself (`mfa`). Without, it is possession only: `mfa` only on top of a first factor
 * given within `RECENT_AUTH_SECONDS` (as a code alone steps up after a recent password).
 */
function passkeyStepUpAmr(c: Context<AppEnv>, auth: AuthUser, key: string[], userVerified: boolean): string[] {
  const amr = new Set([...auth.amr.filter((m) => m !== 'mfa'), ...key.filter((m) => m !== 'mfa')]);
  if (userVerified || isRecentSignIn(auth.authTime, now(), c.get('config').RECENT_AUTH_SECONDS)) amr.add('mfa');
  return [...amr];
}

const stepUpBack = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/step-up?return_to=${encodeURIComponent(safeReturnTo(c.req.query('return_to'), c.get('config')))}`;

const passkeyStepUpSchema = v.strictObject({ credential: v.unknown() }, 'is not a known field');

export const stepUpRoutes = new Hono<AppEnv>()
  // A passkey instead of a password/code (JSON, from the page's script or an API client).
  .post('/step-up/passkey/options', sameOrigin({ always: true }), requireAuth(), rateLimit('passkey'), async (c) => {
    const user = await currentUser(c);
    const passkeys = await import('../auth/passkeys');
    if (!passkeys.passkeysAvailable(c.get('config'))) throw new ApiError('forbidden', 'Passkeys are not enabled on this gateway.');
    c.header('cache-control', 'no-store');
    return c.json(await passkeys.authenticationOptions(c, user.id));
  })
  .post('/step-up/passkey', sameOrigin({ always: true }), requireAuth(), async (c) => {
    const passkeys = await import('../auth/passkeys');
    const auth = c.get('user');
    try {
      const { data } = await readBody(c, passkeyStepUpSchema);
      const credential = v.safeParse(passkeys.authenticationCredentialSchema, data.credential);
      if (!credential.success) throw badRequest(`Field "credential": ${credential.issues[0].message}`);
      if (!passkeys.passkeysAvailable(c.get('config'))) throw new ApiError('forbidden', 'Passkeys are not enabled on this gateway.');
      const user = await currentUser(c);
      const { passkey, userVerified } = await passkeys.verifyPasskeyForUser(c, user.id, credential.output);
      const session = await findSession(sessionsOf(c, auth.id), auth.sessionId);
      if (!session) throw new ApiError('invalid_token', 'The session has ended. Sign in again.');
      const amr = passkeyStepUpAmr(c, auth, passkeys.passkeyAmr({ deviceType: passkey.deviceType, userVerified }), userVerified);
      const stepped = await stepUpSession(c, user, session.id, amr);
      await recordEvent(c, { event: 'step_up', outcome: 'success', userId: user.id, detail: { sid: session.id, amr: amr.join(','), method: 'passkey' } });
      c.header('cache-control', 'no-store');
      if (c.get('authVia') === 'bearer') return c.json({ token_type: 'Bearer', access_token: stepped.accessToken, expires_in: stepped.expiresIn, amr, auth_time: stepped.authTime });
      setAccessCookie(c, stepped.accessToken, session.expiresAt - now());
      return c.json({ ok: true, amr, auth_time: stepped.authTime, expires_in: stepped.expiresIn });
    } catch (e) {
      const err = toApiError(e);
      if (err.status === 401 && err.code === 'invalid_credentials') await checkRateLimit(c, 'passkey');
      throw e;
    }
  })
  .get('/step-up', browserAuth(stepUpBack), async (c) => {
    const returnTo = safeReturnTo(c.req.query('return_to'), c.get('config'));
    const user = await currentUser(c);
    return stepUpPage(c, user, await whatToAsk(c, user, c.get('user'), returnTo), returnTo);
  })
  .post('/step-up', sameOrigin({ always: true }), browserAuth(stepUpBack), async (c) => {
    const form = bodyKind(c) === 'form';
    const auth = c.get('user');
    let returnTo = '/';
    let ask: Ask | undefined;
    let user: User | undefined;
    try {
      await checkRateLimit(c, 'login');
      const { data } = await readBody(c, stepUpSchema);
      returnTo = safeReturnTo(data.return_to, c.get('config'));
      user = await currentUser(c);
      ask = await whatToAsk(c, user, auth, returnTo);
      const amr = await reauthenticate(c, user, auth, ask, data);
      const session = await findSession(sessionsOf(c, auth.id), auth.sessionId);
      if (!session) throw new ApiError('invalid_token', 'The session has ended. Sign in again.');
      const stepped = await stepUpSession(c, user, session.id, amr);
      await recordEvent(c, { event: 'step_up', outcome: 'success', userId: user.id, detail: { sid: session.id, amr: amr.join(',') } });
      c.header('cache-control', 'no-store');
      if (c.get('authVia') === 'bearer') return c.json({ token_type: 'Bearer', access_token: stepped.accessToken, expires_in: stepped.expiresIn, amr, auth_time: stepped.authTime });
      setAccessCookie(c, stepped.accessToken, session.expiresAt - now());
      if (form) return c.redirect(returnTo, 303);
      return c.json({ ok: true, amr, auth_time: stepped.authTime, expires_in: stepped.expiresIn });
    } catch (e) {
      const err = toApiError(e);
      if (!form || !ask || !user || err.status >= 500 || err.code === 'invalid_token') throw e;
      if (err.extra.retryAfter !== undefined) c.header('retry-after', String(err.extra.retryAfter));
      return stepUpPage(c, user, ask, returnTo, err.description, err.status);
    }
  });
