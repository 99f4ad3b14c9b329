/**
 * `GET /auth/login` and `GET /auth/register`: the sign-in and create-account pages. A failed
 * form post to `POST /auth/login` or `/auth/register` (routes/password.ts) renders the same
 * views again through {@link renderLoginPage}.
 */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import { safeReturnTo } from '../http/return-to';
import { emailLoginEnabled } from '../auth/email-code';
import { passkeysAvailable } from '../auth/passkeys';
import { passwordResetAvailable } from './password-reset';
import { enabledProviders } from '../providers/registry';
import { destinationName } from '../ui/components';
import { canRegister, LoginPage } from '../ui/login-page';
import { OAuthErrorPage } from '../ui/oauth-error-page';
import { renderPage, type PageStatus } from '../ui/render';

export function renderLoginPage(
  c: Context<AppEnv>,
  opts: { error?: string | null; notice?: string | null; view?: 'login' | 'register'; email?: string; returnTo: string; status?: PageStatus },
): Response {
  const config = c.get('config');
  const passkeys = passkeysAvailable(config);
  return renderPage(
    c,
    (nonce, brand) =>
      LoginPage({
        nonce,
        brand,
        prefix: config.AUTH_PREFIX,
        returnTo: opts.returnTo,
        providers: enabledProviders(config),
        passwordLogin: config.PASSWORD_LOGIN === 'enabled',
        registration: config.REGISTRATION === 'open',
        minLength: config.PASSWORD_MIN_LENGTH,
        view: opts.view,
        // The reset link needs mail and password sign-in (routes/password-reset.ts).
        offers: { forgotPassword: passwordResetAvailable(config), emailCode: emailLoginEnabled(c) },
        error: opts.error,
        notice: opts.notice,
        email: opts.email,
        passkeys,
        destination: destinationName(opts.returnTo, config.PUBLIC_URL, brand.name),
      }),
    opts.status ?? 200,
    { scripts: passkeys },
  );
}

/** `?done=` after the account page's sign-out forms: a fixed message, never text from the URL. */
const doneNotices: Record<string, string> = {
  signed_out: 'You have been signed out.',
  signed_out_everywhere: 'You have been signed out on every device.',
};

const doneNotice = (c: Context<AppEnv>) => {
  const done = c.req.query('done') ?? '';
  return Object.hasOwn(doneNotices, done) ? doneNotices[done] : null;
};

export const signInPageRoutes = new Hono<AppEnv>()
  .get('/login', (c) =>
    renderLoginPage(c, {
      returnTo: safeReturnTo(c.req.query('return_to'), c.get('config')),
      error: c.req.query('error') ? 'Sign-in failed. Please try again.' : null,
      notice: doneNotice(c),
    }),
  )
  .get('/register', (c) => {
    const config = c.get('config');
    const returnTo = safeReturnTo(c.req.query('return_to'), config);
    if (!canRegister({ passwordLogin: config.PASSWORD_LOGIN === 'enabled', registration: config.REGISTRATION === 'open' })) {
      // Closed registration or no password accounts: say so plainly, and offer the way in there is.
      const message =
        config.REGISTRATION === 'open'
          ? 'Accounts here are created by continuing with a sign-in provider on the sign-in page.'
          : 'New accounts cannot be created here. If you already have an account, sign in.';
      const loginHref = `${config.AUTH_PREFIX}/login?return_to=${encodeURIComponent(returnTo)}`;
      return renderPage(c, (nonce, brand) => OAuthErrorPage({ nonce, brand, title: 'No sign-up here', message, loginHref }), 404);
    }
    return renderLoginPage(c, { view: 'register', returnTo, notice: doneNotice(c) });
  });
