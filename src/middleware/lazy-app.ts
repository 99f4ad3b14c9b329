/**
 * Mounts a Hono app that is imported on first use, so that its code (and everything only it
 * imports) sits in a chunk of its own that start-up never evaluates (scripts/build.mjs splits
 * the build at every dynamic `import()`).
 *
 * hono cannot add routes to an app once it has served a request, so the loaded app is run as
 * an app of its own on the same request, inside the parent's handler: the parent's context
 * variables (config, keyring, request id, ...) are copied in before it runs and everything it
 * set (user, policy, ...) is copied back after, with the route it matched (`lazyRoute`, for the
 * request log); its errors are rethrown, so the parent's error handler answers them exactly as
 * for a route of its own. The loaded app must answer every request it is given (end it with a
 * catch-all); one it does not is a bug, answered 404 `not_found`.
 *
 * @example
 * // in app.ts: the rest of the gateway's endpoints, from app-lazy.ts on first use
 * auth.all('*', lazyApp(loadRest));
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppEnv, Variables } from '../env';
import { ApiError } from '../http/errors';

/** The parent context of each request handed to a lazily loaded app. */
const parents = new WeakMap<Request, Context<AppEnv>>();

function copyVariables(from: Context<AppEnv>, to: Context<AppEnv>): void {
  const vars: Partial<Variables> = from.var;
  // c.var holds only what c.set() was given, and c.set() takes only the keys of Variables.
  for (const key of Object.keys(vars)) setVariable(to, vars, key as keyof Variables);
}

function setVariable<K extends keyof Variables>(to: Context<AppEnv>, vars: Partial<Variables>, key: K): void {
  const value = vars[key];
  if (value !== undefined) to.set(key, value);
}

/**
 * Headers a handler of the loaded app prepared before it threw (a failed logout's cookie
 * deletions above all), handed to the parent, whose error handler merges them into the error
 * response as it does for its own routes.
 */
function carryPreparedHeaders(from: Context<AppEnv>, to: Context<AppEnv>): void {
  const headers = from.res.headers;
  for (const cookie of headers.getSetCookie()) to.header('set-cookie', cookie, { append: true });
  headers.forEach((value, name) => {
    if (name !== 'set-cookie') to.header(name, value);
  });
}

/** The parent's execution context, if it has one (a test's `app.request()` has none). */
function executionCtxOf(c: Context<AppEnv>): Context<AppEnv>['executionCtx'] | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

/** Wraps the loaded app: takes over the parent's variables, hands back its own, rethrows. */
function bridged(inner: Hono<AppEnv>): Hono<AppEnv> {
  const outer = new Hono<AppEnv>();
  outer.use('*', async (c, next) => {
    const parent = parents.get(c.req.raw);
    if (!parent) throw new Error('a lazily loaded app was called without its parent request');
    copyVariables(parent, c);
    try {
      await next();
    } catch (e) {
      carryPreparedHeaders(c, parent);
      throw e;
    } finally {
      copyVariables(c, parent);
      parent.set('lazyRoute', routePath(c));
    }
  });
  outer.route('/', inner);
  outer.notFound(() => {
    throw new ApiError('not_found', 'No such endpoint.');
  });
  outer.onError((e) => {
    throw e;
  });
  return outer;
}

export function lazyApp(load: () => Promise<Hono<AppEnv>>): MiddlewareHandler<AppEnv> {
  let app: Promise<Hono<AppEnv>> | undefined;
  return async (c) => {
    // A failed import is not cached: the next request tries again.
    app ??= load().then(bridged, (e: unknown) => {
      app = undefined;
      throw e;
    });
    const loaded = await app;
    const request = c.req.raw;
    parents.set(request, c);
    return loaded.fetch(request, c.env, executionCtxOf(c));
  };
}
