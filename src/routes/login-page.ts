/** `GET /auth/login`: the sign-in page. */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import { safeReturnTo } from '../http/return-to';
import { passkeysAvailable } from '../auth/passkeys';
import { enabledProviders } from '../providers/registry';
import { LoginPage } from '../ui/login-page';
import { renderPage, type PageStatus } from '../ui/render';

export function renderLoginPage(
  c: Context<AppEnv>,
  opts: { error?: string | null; notice?: string | null; form?: 'login' | 'register'; email?: string; returnTo: string; status?: PageStatus },
): Response {
  const config = c.get('config');
  const passkeys = passkeysAvailable(config);
  return renderPage(
    c,
    (nonce) =>
      LoginPage({
        nonce,
        prefix: config.AUTH_PREFIX,
        returnTo: opts.returnTo,
        providers: enabledProviders(config),
        passwordLogin: config.PASSWORD_LOGIN === 'enabled',
        registration: config.REGISTRATION === 'open',
        minLength: config.PASSWORD_MIN_LENGTH,
        error: opts.error,
        notice: opts.notice,
        form: opts.form,
        email: opts.email,
        passkeys,
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

export const loginPageRoutes = new Hono<AppEnv>().get('/login', (c) =>
  renderLoginPage(c, {
    returnTo: safeReturnTo(c.req.query('return_to'), c.get('config')),
    error: c.req.query('error') ? 'Sign-in failed. Please try again.' : null,
    notice: Object.hasOwn(doneNotices, c.req.query('done') ?? '') ? doneNotices[c.req.query('done')!] : null,
  }),
);
