/**
 * `@gatehouse/verify/hono`: Hono middleware for an origin behind Gatehouse (a Worker, or Hono on
 * Node, Deno or Bun). Modelled on Hono's own `jwk` middleware: a factory that returns a
 * `MiddlewareHandler`, verifies the request's `X-Auth-Assertion` with
 * {@link verifyGatehouseAssertion} (the gateway's keys, fetched from its JWKS and cached, at most
 * a few key sets per isolate), and sets the verified identity as `c.get('gatehouse')`. A missing
 * or invalid assertion is answered 401 with a JSON error; the handler never runs.
 *
 * Hono is only a type here (a peer the origin already has): nothing of it is loaded at run time.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { GatehouseAssertionError, verifyGatehouseAssertion, type GatehouseIdentity, type GatehouseService, type VerifyOptions } from './index.js';

/** The context variable the middleware sets: `c.get('gatehouse')`. */
export interface GatehouseVariables {
  gatehouse: GatehouseIdentity;
}

/** The context variable when services are accepted (`acceptServices: true`). */
export interface GatehouseOrServiceVariables {
  gatehouse: GatehouseIdentity | GatehouseService;
}

/**
 * The options, or a function of the request's context that returns them (a Worker reads its
 * settings from `c.env`).
 */
export type GatehouseOptions<O extends VerifyOptions> = O | ((c: Context) => O);

/**
 * Gatehouse middleware: only requests that came through Gatehouse, with a valid assertion for
 * this origin's audience, reach the handlers after it.
 *
 * @param options.jwksUrl - The gateway's `PUBLIC_URL/.well-known/jwks.json`.
 * @param options.audience - This origin's audience (the route's `audience`, by default the origin's URL origin); required.
 * @param options.issuer - The gateway's `PUBLIC_URL`; by default the origin of `jwksUrl`.
 * @param options.clockTolerance - Seconds of clock skew tolerated (default 30).
 * @param options.acceptServices - Let services (client credentials, no person) through too; then `c.get('gatehouse').kind` tells which.
 * @returns A middleware that answers 401 `{"error":"unauthorized","error_description":…}` unless the assertion verifies; bad options (no audience, a plain-http JWKS) are thrown, the application's 500.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { gatehouse, type GatehouseVariables } from '@gatehouse/verify/hono';
 *
 * const app = new Hono<{ Variables: GatehouseVariables }>();
 * app.use('*', gatehouse({
 *   jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
 *   audience: 'https://app.internal.example.com',
 * }));
 * app.get('/', (c) => c.json({ hello: c.get('gatehouse').email }));
 * export default app;
 * ```
 */
export function gatehouse(options: GatehouseOptions<VerifyOptions & { acceptServices: true }>): MiddlewareHandler<{ Variables: GatehouseOrServiceVariables }>;
export function gatehouse(options: GatehouseOptions<VerifyOptions & { acceptServices?: false }>): MiddlewareHandler<{ Variables: GatehouseVariables }>;
// The implementation's own signature is Hono's plain `MiddlewareHandler`, as Hono's middleware are; callers see the overloads.
export function gatehouse(options: GatehouseOptions<VerifyOptions>): MiddlewareHandler {
  return async function gatehouse(c, next) {
    const resolved = typeof options === 'function' ? options(c) : options;
    let who: GatehouseIdentity | GatehouseService;
    try {
      who = await verifyGatehouseAssertion(c.req.raw, resolved);
    } catch (e) {
      // Anything else (a bug, a bad option) is the application's error, not the caller's.
      if (!(e instanceof GatehouseAssertionError)) throw e;
      c.header('Cache-Control', 'no-store');
      return c.json({ error: 'unauthorized', error_description: e.message }, 401);
    }
    c.set('gatehouse', who);
    await next();
  };
}
