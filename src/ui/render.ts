/**
 * Sends one of our HTML pages with a strict Content-Security-Policy: nothing may load except
 * the page's own nonce-tagged stylesheet, forms post only to us (and allowed return origins,
 * since form-action also governs the redirect after a post), and no one may frame it.
 */
import type { Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { AppEnv } from '../env';
import { randomId } from '../util/random';

/** 200, or the status of any of our error codes (http/errors.ts). */
export type PageStatus = 200 | 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 502 | 503 | 504;

/**
 * `scripts`: the page loads our own script (passkeys/client.js, nonce-tagged) and that script
 * may call our JSON endpoints; pages without it keep a policy that allows no script at all.
 */
export function renderPage(c: Context<AppEnv>, page: (nonce: string) => JSX.Element, status: PageStatus = 200, options: { scripts?: boolean } = {}): Response {
  const nonce = randomId(16);
  const config = c.get('config');
  const formTargets = ["'self'", ...(config?.ALLOWED_RETURN_ORIGINS ?? [])].join(' ');
  c.header(
    'content-security-policy',
    `default-src 'none'; style-src 'nonce-${nonce}'; ${options.scripts ? `script-src 'nonce-${nonce}'; connect-src 'self'; ` : ''}img-src 'self' https: data:; form-action ${formTargets}; frame-ancestors 'none'; base-uri 'none'`,
  );
  c.header('cache-control', 'no-store');
  return c.html(`<!doctype html>${page(nonce).toString()}`, status);
}
