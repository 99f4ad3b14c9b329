/**
 * Loads the validated config and the signing keys (both once per isolate) into
 * `c.var.config` / `c.var.keyring`. A bad setting fails closed: every request gets a 500 whose
 * JSON names the setting and never its value.
 *
 * @example
 * app.use('*', configure())
 */
import type { MiddlewareHandler } from 'hono';
import { ConfigError, loadConfig } from '../config/load';
import type { AppEnv } from '../env';
import { ApiError, errorResponse } from '../http/errors';
import { getKeyring } from '../keys/keyring';
import { log } from '../observability/log';

const reported = new WeakSet<object>();

function configFailure(error: ConfigError): Response {
  if (!reported.has(error)) {
    reported.add(error);
    log.error('configuration_invalid', { setting: error.setting, message: error.message });
  }
  return errorResponse(
    new ApiError('configuration_error', `Gatehouse is misconfigured: ${error.message}`, { fields: { setting: error.setting } }),
  );
}

export function configure(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const result = loadConfig(c.env);
    if (!result.ok) return configFailure(result.error);
    c.set('config', result.config);
    try {
      c.set('keyring', await getKeyring(result.config));
    } catch (e) {
      if (e instanceof ConfigError) return configFailure(e);
      throw e;
    }
    await next();
  };
}
