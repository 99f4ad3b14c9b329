/**
 * The answer for a request on one of the gateway's own paths that no route took: 405 with
 * `Allow` when the path exists for other methods, 404 otherwise; an HTML page for a browser
 * navigation, docs/design.md's JSON for everyone else.
 *
 * The allowed methods come from the app's own route table (read once per app, on first use,
 * when every route is registered), so no list is kept by hand. hono has no 405 of its own.
 *
 * @example
 * const unmatched = unmatchedEndpoint(app);
 * auth.all('*', unmatched); // the last route of the gateway's own sub-app
 */
import type { Context, Handler, Hono } from 'hono';
import { TrieRouter } from 'hono/router/trie-router';
import { signedInOrNobody } from '../auth/authenticate';
import type { AppEnv } from '../env';
import { wantsHtml } from '../http/client';
import { ApiError } from '../http/errors';
import { OAuthErrorPage } from '../ui/oauth-error-page';
import { renderPage } from '../ui/render';

interface MethodIndex {
  router: TrieRouter<string>;
  methods: string[];
}

function indexRoutes(app: Hono<AppEnv>): MethodIndex {
  const router = new TrieRouter<string>();
  const methods = new Set<string>();
  // `ALL` entries are middleware, the proxy and this fallback: they say nothing about a method.
  for (const route of app.routes) {
    if (route.method === 'ALL') continue;
    router.add(route.method, route.path, route.method);
    methods.add(route.method);
  }
  return { router, methods: [...methods] };
}

/** Methods with a route for `path`; HEAD wherever GET is (hono answers HEAD with the GET route). */
function allowedMethods(index: MethodIndex, path: string): string[] {
  const allowed = index.methods.filter((m) => index.router.match(m, path)[0].length > 0);
  if (allowed.includes('GET')) allowed.splice(allowed.indexOf('GET') + 1, 0, 'HEAD');
  return allowed;
}

/**
 * The page's way on: the account page for someone signed in (offering them "Sign in" would
 * suggest they are not), else the sign-in page. A fault while finding out only costs the
 * account link, never the page.
 */
async function page(c: Context<AppEnv>, status: 404 | 405, message: string): Promise<Response> {
  const prefix = c.get('config').AUTH_PREFIX;
  const title = status === 404 ? 'Page not found' : 'Not available this way';
  const signedIn = await signedInOrNobody(c).catch(() => undefined);
  const next = signedIn ? { href: `${prefix}/account`, label: 'Go to your account' } : { href: `${prefix}/login`, label: 'Back to sign-in' };
  return renderPage(c, (nonce, brand) => OAuthErrorPage({ nonce, brand, title, message, next, backHref: signedIn ? '/' : undefined }), status);
}

export function unmatchedEndpoint(app: Hono<AppEnv>): Handler<AppEnv> {
  let index: MethodIndex | undefined;
  return async (c) => {
    index ??= indexRoutes(app);
    const allowed = allowedMethods(index, c.req.path);
    if (allowed.length === 0) {
      if (wantsHtml(c)) return page(c, 404, 'There is no page at this address.');
      throw new ApiError('not_found', 'No such endpoint.');
    }
    const allow = allowed.join(', ');
    if (wantsHtml(c)) {
      c.header('allow', allow);
      return page(c, 405, `This address does not answer ${c.req.method} requests.`);
    }
    throw new ApiError('method_not_allowed', `This endpoint does not accept ${c.req.method}; it accepts ${allow}.`, { headers: { allow } });
  };
}
