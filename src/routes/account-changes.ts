/**
 * Account self-service, JSON or HTML form (rules in auth/account-changes.ts):
 *
 * - `POST /account/password`                 change the password (`current_password`, `new_password`)
 * - `POST /account/password/add`             mail a link to set a first password (a recent sign-in)
 * - `GET  /account/password/add?token=`      the link's page (a form; the GET never uses the link)
 * - `POST /account/password/add/confirm`     set it (`token`, `password`)
 * - `POST /account/email`                    mail a link to a new address (`new_email`, `current_password` or a recent sign-in)
 * - `GET  /account/email/confirm?token=`     the link's page (a button; a password field unless signed in to that account recently)
 * - `POST /account/email/confirm`            confirm it (`token`, and `current_password` or a recent sign-in of the same account)
 * - `POST /account/delete`                   delete the account (`password`, or a recent provider sign-in)
 * - `GET  /account/deleted`                  "your account was deleted"
 *
 * JSON clients get JSON (errors per http/errors.ts). A form post gets a 303 back to the account
 * page with a fixed notice (routes/account-overview.ts), or a page saying what went wrong (never
 * a JSON body in a browser).
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { signedInOrNobody } from '../auth/authenticate';
import { emailInput } from '../auth/email-address';
import { isRecentSignIn } from '../auth/recent-sign-in';
import type { AppEnv, AuthUser } from '../env';
import { readBody, type BodyKind } from '../http/body';
import { wantsHtml } from '../http/client';
import { ApiError } from '../http/errors';
import { clearSessionCookies } from '../http/cookies';
import { toApiError } from '../http/errors';
import { checkRateLimit } from '../middleware/rate-limit';
import { requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { needsRecentSignIn } from '../middleware/require-auth';
import { renderPage, type PageStatus } from '../ui/render';
import { nowSeconds } from '../util/time';
import { backToAccount } from './account-overview';

// Loaded on first use: only these rare requests need the rules and pages (app.ts stays small).
const changes = () => import('../auth/account-changes');
const pages = () => import('../ui/self-service-pages');

const password = v.pipe(v.string('must be a string'), v.minLength(1, 'is required'), v.maxLength(1024, 'is too long (256 characters at most)'));
const token = v.pipe(v.string('must be a string'), v.maxLength(100, 'is too long'));
const strict = <T extends v.ObjectEntries>(entries: T) => v.strictObject(entries, 'is not a known field');

const schemas = {
  changePassword: strict({ current_password: password, new_password: password }),
  empty: strict({}),
  addPassword: strict({ token, password }),
  changeEmail: strict({ new_email: emailInput, current_password: v.optional(v.union([v.literal(''), password])) }),
  confirmEmail: strict({ token, current_password: v.optional(v.union([v.literal(''), password])) }),
  deleteAccount: strict({ password: v.optional(v.union([v.literal(''), password])) }),
};

const accountHref = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/account`;

/** A browser whose session has ended is sent to sign in (and back to the account page). */
const auth = () =>
  requireAuth({
    onUnauthenticated: (c) =>
      wantsHtml(c) || (c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')
        ? c.redirect(`${c.get('config').AUTH_PREFIX}/login?return_to=${encodeURIComponent(accountHref(c))}`, 303)
        : undefined,
  });

async function resultPage(c: Context<AppEnv>, title: string, outcome: { notice?: string; error?: string }, status: PageStatus = 200, next?: { href: string; label: string }) {
  const prefix = c.get('config').AUTH_PREFIX;
  const { AccountResultPage } = await pages();
  return renderPage(
    c,
    (nonce, brand) => AccountResultPage({ nonce, brand, prefix, title, ...outcome, next: next ?? { href: `${prefix}/account`, label: 'Back to your account' } }),
    status,
  );
}

/**
 * Runs an action on a parsed body. A form post that fails gets a page with the error (with the
 * status of the error, 503 included); JSON clients get the JSON error from the error handler.
 */
function action<S extends v.GenericSchema>(schema: S, title: string, run: (c: Context<AppEnv>, data: v.InferOutput<S>, kind: BodyKind) => Promise<Response>) {
  return async (c: Context<AppEnv>) => {
    let kind: BodyKind | undefined;
    try {
      const body = await readBody(c, schema);
      kind = body.kind;
      return await run(c, body.data, body.kind);
    } catch (e) {
      const isForm = kind === 'form' || (kind === undefined && (c.req.header('content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded'));
      const err = toApiError(e);
      // A bug (500 server_error) goes to the error handler, which logs it and says nothing of it.
      if (!isForm || err.code === 'server_error') throw e;
      if (err.extra.retryAfter !== undefined) c.header('retry-after', String(Math.max(1, Math.ceil(err.extra.retryAfter))));
      return resultPage(c, title, { error: err.description }, err.status);
    }
  };
}

const invalidLinkPage = (c: Context<AppEnv>, title: string) =>
  resultPage(c, title, { error: 'This link is invalid, has expired or was already used. Start again from your account page.' }, 400);

export const accountChangeRoutes = new Hono<AppEnv>()
  .post(
    '/account/password',
    sameOrigin({ always: true }),
    auth(),
    action(schemas.changePassword, 'Your password was not changed', async (c, data, kind) => {
      const { changePassword } = await changes();
      const r = await changePassword(c, c.get('user'), { currentPassword: data.current_password, newPassword: data.new_password });
      if (kind === 'form') return backToAccount(c, 'password_changed');
      return c.json({ ok: true, ended_sessions: r.endedSessions, notice_sent: r.noticeSent });
    }),
  )
  .post(
    '/account/password/add',
    sameOrigin({ always: true }),
    auth(),
    action(schemas.empty, 'No link was sent', async (c, _data, kind) => {
      // A password is a new way in: only a recent sign-in may ask for one (the account has no password to type).
      const stepUp = needsRecentSignIn(c, c.get('user'), accountHref(c));
      if (stepUp) return stepUp;
      // Each request sends a mail: the per-IP burst limit of sign-in keeps this from becoming a mail cannon.
      await checkRateLimit(c, 'login');
      const { requestAddPassword } = await changes();
      await requestAddPassword(c, c.get('user'));
      if (kind === 'form') return backToAccount(c, 'add_password_sent');
      return c.json({ status: 'link_sent' }, 202);
    }),
  )
  .get('/account/password/add', async (c) => {
    const raw = c.req.query('token') ?? '';
    const found = await (await changes()).peekLink(c, raw, 'add_password');
    if (!found) return invalidLinkPage(c, 'Set a password');
    const config = c.get('config');
    const { AddPasswordPage } = await pages();
    return renderPage(c, (nonce, brand) =>
      AddPasswordPage({ nonce, brand, prefix: config.AUTH_PREFIX, token: raw, email: found.user.email, minPasswordLength: config.PASSWORD_MIN_LENGTH }),
    );
  })
  .post(
    '/account/password/add/confirm',
    sameOrigin({ always: true }),
    action(schemas.addPassword, 'Your password was not set', async (c, data, kind) => {
      const { completeAddPassword } = await changes();
      const r = await completeAddPassword(c, data.token, data.password);
      if (kind === 'json') return c.json({ ok: true, notice_sent: r.noticeSent });
      const prefix = c.get('config').AUTH_PREFIX;
      return resultPage(c, 'Password set', { notice: 'Your password has been set. You can now sign in with your email address and password.' }, 200, {
        href: `${prefix}/account`,
        label: 'Go to your account',
      });
    }),
  )
  .post(
    '/account/email',
    sameOrigin({ always: true }),
    auth(),
    action(schemas.changeEmail, 'Your email address was not changed', async (c, data, kind) => {
      await checkRateLimit(c, 'login'); // mails any address the user types: limited per IP like sign-in
      const { requestEmailChange } = await changes();
      await requestEmailChange(c, c.get('user'), { newEmail: data.new_email, currentPassword: data.current_password || undefined });
      if (kind === 'form') return backToAccount(c, 'email_link_sent');
      // The same answer whether or not another account holds the address (it is checked on confirmation).
      return c.json({ status: 'check_inbox' }, 202);
    }),
  )
  .get('/account/email/confirm', async (c) => {
    const raw = c.req.query('token') ?? '';
    const found = await (await changes()).peekLink(c, raw, 'change_email');
    if (!found) return invalidLinkPage(c, 'Confirm your new email address');
    const { ConfirmEmailPage } = await pages();
    const prefix = c.get('config').AUTH_PREFIX;
    const signedIn = await signedInOrNobody(c);
    const recent = signedIn?.id === found.user.id && isRecentSignIn(signedIn.authTime, nowSeconds(), c.get('config').RECENT_AUTH_SECONDS);
    const here = `${prefix}/account/email/confirm?token=${encodeURIComponent(raw)}`;
    return renderPage(c, (nonce, brand) =>
      ConfirmEmailPage({
        nonce,
        brand,
        prefix,
        token: raw,
        email: found.token.email,
        currentEmail: found.user.email,
        // Who may confirm: a recent sign-in of this account, or its password; a provider-only account signs in first.
        proof: recent ? 'signed_in' : found.user.passwordHash !== null ? 'password' : 'sign_in_first',
        signInHref: `${prefix}/login?return_to=${encodeURIComponent(here)}`,
      }),
    );
  })
  .post(
    '/account/email/confirm',
    sameOrigin({ always: true }),
    action(schemas.confirmEmail, 'Your email address was not changed', async (c, data, kind) => {
      const { confirmEmailChange } = await changes();
      const r = await confirmEmailChange(c, data.token, { auth: await signedInOrNobody(c), password: data.current_password || undefined });
      if (kind === 'json') return c.json({ ok: true, email: r.email, ended_sessions: r.endedSessions, notice_sent: r.noticeSent });
      return resultPage(c, 'Email address changed', { notice: `Your account now uses ${r.email}. Your other sessions were signed out.` });
    }),
  )
  .post(
    '/account/delete',
    sameOrigin({ always: true }),
    auth(),
    action(schemas.deleteAccount, 'Your account was not deleted', async (c, data, kind) => {
      const { deleteAccount } = await changes();
      const r = await deleteAccount(c, c.get('user'), { password: data.password || undefined });
      clearSessionCookies(c);
      c.header('cache-control', 'no-store');
      if (kind === 'form') return c.redirect(`${accountHref(c)}/deleted`, 303);
      return c.json({ deleted: true, notice_sent: r.noticeSent });
    }),
  )
  .get('/account/deleted', (c) =>
    resultPage(c, 'Account deleted', { notice: 'Your account has been deleted, with its sign-in methods and sessions.' }, 200, {
      href: `${c.get('config').AUTH_PREFIX}/login`,
      label: 'Go to sign-in',
    }),
  );
