/**
 * Sends one of our HTML pages with a strict Content-Security-Policy: nothing may load except
 * the page's own nonce-tagged stylesheet and script (the show-password toggle), forms post only
 * to us (and allowed return origins and app hosts, since form-action also governs the redirects
 * after a post),
 * and no one may frame it. The page function gets the nonce and the app's identity ({@link Brand}).
 *
 * @example
 * return renderPage(c, (nonce, brand) => <Page title="Check your email" nonce={nonce} brand={brand}>...</Page>, 200);
 */
import type { Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { AppEnv } from '../env';
import { randomId } from '../util/random';
import type { Brand } from './components';

/** 200, or the status of any of our error codes (http/errors.ts). */
export type PageStatus = 200 | 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 502 | 503 | 504;

/**
 * Images: our own origin and inline `data:` images (a QR code), plus the origin of
 * `APP_LOGO_URL` when it is an https URL (config has checked it is one) and nothing else.
 */
function imageSources(logoUrl: string | undefined): string {
  const logoOrigin = logoUrl && !logoUrl.startsWith('/') ? new URL(logoUrl).origin : null;
  return ["'self'", 'data:', logoOrigin].filter(Boolean).join(' ');
}

/**
 * `formTargets`: CSP sources the page's form may also lead to (checked by the caller).
 * `scripts`: the page's own script (passkeys/client.js, nonce-tagged) may call our JSON
 * endpoints (`connect-src 'self'`); other pages may run only their nonce-tagged inline script
 * (the show-password toggle) and connect nowhere.
 */
export function renderPage(
  c: Context<AppEnv>,
  page: (nonce: string, brand: Brand) => JSX.Element,
  status: PageStatus = 200,
  options: { scripts?: boolean; formTargets?: readonly string[] } = {},
): Response {
  const nonce = randomId(16);
  const config = c.get('config');
  // A sign-in form's redirects lead on through /sso to an app host (README "Hosts"), and
  // form-action governs every redirect after a post: each host a route names, on any port (a
  // `*.` source matches the names under it, as a route's wildcard does).
  const appHosts = (config?.ROUTES ?? []).flatMap((r) => (r.host === undefined ? [] : [`${r.host}:*`]));
  // `formTargets`: where this page's form redirects on to (the consent page: the app's redirect URI).
  const formTargets = ["'self'", ...(config?.ALLOWED_RETURN_ORIGINS ?? []), ...appHosts, ...(options.formTargets ?? [])].join(' ');
  const brand: Brand = { name: config?.APP_NAME ?? 'Gatehouse', logoUrl: config?.APP_LOGO_URL, accent: config?.APP_ACCENT };
  c.header(
    'content-security-policy',
    `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; ${options.scripts ? "connect-src 'self'; " : ''}img-src ${imageSources(brand.logoUrl)}; form-action ${formTargets}; frame-ancestors 'none'; base-uri 'none'`,
  );
  c.header('cache-control', 'no-store');
  return c.html(`<!doctype html>${page(nonce, brand).toString()}`, status);
}
