/**
 * Puts the validated config and the signing keys (both loaded once per isolate) into
 * `c.var.config` / `c.var.keyring`, has the route policies compiled, and the one failure
 * response for a bad configuration.
 */
import type { MiddlewareHandler } from 'hono';
import { ConfigError } from '../config/load';
import { routePolicies } from '../config/route-policies';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { navigationWantsHtml } from '../http/client';
import { ApiError, errorPage, errorResponse } from '../http/errors';
import { getKeyring } from '../keys/keyring';
import { log } from '../observability/log';

const reported = new WeakSet<object>();

/**
 * A bad setting fails closed: every request gets a 500 whose JSON names the setting and never
 * its value; a browser navigation gets the same message as a plain page. Logged once per
 * isolate (a failed parse or key import is cached, so it is the same error object on every
 * request).
 */
export function configFailure(error: ConfigError, request: Request): Response {
  if (!reported.has(error)) {
    reported.add(error);
    log.error('configuration_invalid', { setting: error.setting, message: error.message });
  }
  const failure = new ApiError('configuration_error', `Gatehouse is misconfigured: ${error.message}`, { fields: { setting: error.setting } });
  return navigationWantsHtml(request) ? errorPage(failure) : errorResponse(failure);
}

/**
 * Sets `c.var.config` (parsed by the entry point, which builds the app for it) and
 * `c.var.keyring`; a key set that does not import, or a route policy that does not compile,
 * answers the configuration failure.
 *
 * @example
 * app.use('*', configure(config))
 */
export function configure(config: Config): MiddlewareHandler<AppEnv> {
  // Null (nothing to wait for) unless some route has rules.
  const policies = routePolicies(config);
  return async (c, next) => {
    c.set('config', config);
    try {
      c.set('keyring', await getKeyring(config));
      // Route policies are compiled on the first request; a mistake fails every request closed.
      if (policies) await policies;
    } catch (e) {
      if (e instanceof ConfigError) return configFailure(e, c.req.raw);
      throw e;
    }
    await next();
  };
}
