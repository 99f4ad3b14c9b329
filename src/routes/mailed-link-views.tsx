/**
 * How the email-verification and password-reset endpoints answer: JSON for API clients, the
 * pages of ui/mailed-link-pages.tsx for form posts and browser navigations. Loaded on first
 * use (`await import`) by the handlers that need it, never on the hot path.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import type { BodyKind } from '../http/body';
import type { ApiError } from '../http/errors';
import { destinationName } from '../ui/components';
import { CheckEmailPage, ConfirmEmailPage, EmailNotVerifiedPage, ForgotPasswordPage, MessagePage, ResetPasswordPage, SignedInPage } from '../ui/mailed-link-pages';
import { renderPage, type PageStatus } from '../ui/render';

/** The one answer of a request that must not reveal whether an account exists. */
const CHECK_EMAIL = {
  register: 'We sent a message to this address with what to do next. To finish creating your account, open the link in it.',
  forgot: 'If an account with a password uses this address, we sent it a link to choose a new password. The link works for 30 minutes.',
  resend: 'If this address is waiting to be confirmed, we sent a new link to it. Earlier links no longer work.',
} as const;

export type CheckEmailKind = keyof typeof CHECK_EMAIL;

/**
 * `202 {"status":"check_email","message":…}`, or the "Check your email" page for a form post,
 * which names the address typed and offers to send the mail again. Built only from the kind
 * and what the person typed, never from what happened: byte for byte the same for an address
 * with or without an account (the page's CSP nonce aside).
 */
export function checkEmailAnswer(c: Context<AppEnv>, kind: BodyKind, what: CheckEmailKind, email: string, returnTo: string): Response {
  c.header('cache-control', 'no-store');
  if (kind === 'json') return c.json({ status: 'check_email', message: CHECK_EMAIL[what] }, 202);
  const prefix = c.get('config').AUTH_PREFIX;
  return renderPage(c, (nonce, brand) => CheckEmailPage({ nonce, brand, prefix, what, message: CHECK_EMAIL[what], email, returnTo }));
}

/**
 * A page for a refusal or outage of a form post or link (bad link, mail down, rate limited...),
 * with the refusal's own status; `action` is the way on (default: back to sign-in).
 */
export function errorPage(c: Context<AppEnv>, err: ApiError, action?: { href: string; label: string }): Response {
  const prefix = c.get('config').AUTH_PREFIX;
  if (err.extra.retryAfter !== undefined) c.header('retry-after', String(err.extra.retryAfter));
  const titles: Partial<Record<ApiError['code'], string>> = {
    invalid_link: 'This link does not work any more',
    mail_unavailable: 'We could not send the email',
    rate_limited: 'Too many requests',
    not_found: 'Not available',
  };
  const next = action ?? { href: `${prefix}/login`, label: 'Back to sign-in' };
  return renderPage(
    c,
    (nonce, brand) => MessagePage({ nonce, brand, title: titles[err.code] ?? 'Something is not right', message: err.description, tone: 'error', action: next }),
    err.status,
  );
}

export function messagePage(c: Context<AppEnv>, title: string, message: string, action?: { href: string; label: string }): Response {
  return renderPage(c, (nonce, brand) => MessagePage({ nonce, brand, title, message, tone: 'status', action }));
}

export function confirmEmailPage(
  c: Context<AppEnv>,
  token: string,
  email: string,
  opts: { returnTo?: string; askPassword: boolean; error?: string; status?: PageStatus },
): Response {
  const prefix = c.get('config').AUTH_PREFIX;
  return renderPage(c, (nonce, brand) => ConfirmEmailPage({ nonce, brand, prefix, token, email, returnTo: opts.returnTo, askPassword: opts.askPassword, error: opts.error }), opts.status ?? 200);
}

export function forgotPasswordPage(c: Context<AppEnv>, returnTo: string, opts: { email?: string; error?: string; status?: PageStatus } = {}): Response {
  return renderPage(c, (nonce, brand) => ForgotPasswordPage({ nonce, brand, prefix: c.get('config').AUTH_PREFIX, returnTo, email: opts.email, error: opts.error }), opts.status ?? 200);
}

export function resetPasswordPage(c: Context<AppEnv>, token: string, email: string, opts: { error?: string; status?: PageStatus } = {}): Response {
  const config = c.get('config');
  return renderPage(c, (nonce, brand) => ResetPasswordPage({ nonce, brand, prefix: config.AUTH_PREFIX, token, email, minLength: config.PASSWORD_MIN_LENGTH, error: opts.error }), opts.status ?? 200);
}

export function emailNotVerifiedPage(c: Context<AppEnv>, email: string, returnTo: string): Response {
  return renderPage(c, (nonce, brand) => EmailNotVerifiedPage({ nonce, brand, prefix: c.get('config').AUTH_PREFIX, email, returnTo }), 403);
}

/** The page after a confirmed link signed the person in (the session cookies are already set). */
export function signedInPage(c: Context<AppEnv>, email: string, returnTo: string): Response {
  const config = c.get('config');
  return renderPage(c, (nonce, brand) =>
    SignedInPage({ nonce, brand, prefix: config.AUTH_PREFIX, email, returnTo, destination: destinationName(returnTo, config.PUBLIC_URL, brand.name) }),
  );
}
