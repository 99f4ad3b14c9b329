/**
 * Answers `TRACE`, `TRACK` and `CONNECT` with 405 before anything else runs: the gateway never
 * serves or forwards them. `TRACE`/`TRACK` echo the request back, cookies and `Authorization`
 * included (cross-site tracing); `CONNECT` asks for a tunnel, which no route offers.
 *
 * @example
 * app.use('*', refuseMethods(gatewayHeaders(config)))
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, errorResponse } from '../http/errors';

/** Methods the gateway never serves or forwards (forward-auth refuses them too). */
export const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'TRACK', 'CONNECT']);
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** `gatewayHeaders` adds the gateway's security headers to the refusal, as on its other answers. */
export function refuseMethods(gatewayHeaders: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method.toUpperCase();
    if (!REFUSED_METHODS.has(method)) return next();
    const refusal = errorResponse(new ApiError('method_not_allowed', `${method} requests are not allowed.`, { headers: { allow: ALLOW } }));
    await gatewayHeaders(c, async () => {
      c.res = refusal;
    });
    return c.res;
  };
}
