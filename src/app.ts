/**
 * Assembles the Gatehouse Hono app for one configuration. Built once per isolate (the auth
 * prefix is a setting, so routes are mounted after the config is known).
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import type { Config } from './config/schema';
import type { AppEnv } from './env';
import { memoize } from './util/memo';
import { ApiError } from './http/errors';
import { configure } from './middleware/configure';
import { errorHandler } from './middleware/error-handler';
import { devLoopback } from './middleware/dev-loopback';
import { httpsOnly } from './middleware/https-only';
import { proxy } from './proxy/proxy';
import { hasHostRoutes, isAppHost } from './proxy/route-table';
import { rateLimitRefusals } from './middleware/rate-limit';
import { refuseMethods } from './middleware/refuse-methods';
import { lazyApp } from './middleware/lazy-app';
import { requestLog } from './observability/request-log';
import { verifyRoute } from './routes/verify';
import { healthRoute, jwksRoute } from './routes/well-known';
import { METADATA_PATH } from './config/protected-resources';

export const MAX_BODY_BYTES = 64 * 1024;

/** Headers for every response the gateway itself makes (proxied responses are the origin's). */
export function gatewayHeaders(config: Config) {
  return secureHeaders({
    strictTransportSecurity: config.isDevelopment ? false : 'max-age=63072000; includeSubDomains',
    xFrameOptions: 'DENY',
    referrerPolicy: 'no-referrer',
    xContentTypeOptions: 'nosniff',
    crossOriginResourcePolicy: 'same-origin',
    crossOriginOpenerPolicy: 'same-origin',
    // Our pages set their own nonce-based CSP (ui/render.ts); JSON needs nothing more than this.
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    // A header a route set itself (a page's nonce CSP) wins; otherwise pages lose their stylesheet.
    overwrite: false,
  });
}

export function buildApp(config: Config): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(errorHandler);
  app.use('*', requestLog());
  app.use('*', configure(config));
  app.use('*', refuseMethods(gatewayHeaders(config)));
  app.use('*', httpsOnly());
  app.use('*', devLoopback());
  // On an app host (a host the routes name), the gateway's paths are its single sign-on and
  // sign-out alone (routes/host-sign-in.ts); every other one answers 404 there.
  if (hasHostRoutes(config.ROUTES)) {
    const onAppHost = lazyApp(async () => (await import('./app-lazy')).buildAppHostApp(config, gatewayHeaders(config)));
    app.use(`${config.AUTH_PREFIX}/*`, async (c, next) => (isAppHost(config, new URL(c.req.url).host) ? onAppHost(c, next) : next()));
  }

  const auth = new Hono<AppEnv>();
  auth.use('*', gatewayHeaders(config));
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError('payload_too_large', 'The request body is too large (64 KiB at most).');
    },
  });
  // SCIM answers its own 413, in the SCIM error schema, with the same limit (routes/scim.ts).
  // Whether SCIM is on may be known only from D1 (a token an administrator created), so its
  // path is left to it either way: off, the catch-all answers 404 without reading the body.
  const scimPrefix = `${config.AUTH_PREFIX}/scim/v2/`;
  auth.use('*', (c, next) => (c.req.path.startsWith(scimPrefix) ? next() : limitBody(c, next)));
  // The hot path is here, built with the app: health, forward-auth, the JWKS and (below) the
  // proxy. Every other endpoint of the gateway (pages, sign-in, sessions, account, admin, the
  // 404/405 catch-all) is in app-lazy.ts, imported on the first request that reaches it, so
  // start-up evaluates none of it. New endpoints go there.
  const rest = lazyApp(async () => (await import('./app-lazy')).buildLazyApp(config, app));
  auth.route('/', healthRoute);
  auth.get('/verify', rateLimitRefusals('verify_failure'));
  auth.route('/', verifyRoute);
  auth.all('*', rest);

  // The gateway's under /.well-known: the JWKS; on its own host (not an app host) the
  // authorization server's metadata (routes/oauth-discovery.ts, loaded lazily); and the metadata
  // of the routes that are protected resources. Every other path there (another discovery,
  // security.txt, the metadata of a resource no route marks) is an origin's, proxied below and
  // sent back as it came.
  app.use('/.well-known/jwks.json', gatewayHeaders(config));
  app.route('/', jwksRoute);
  app.all('/.well-known/jwks.json', rest);
  const headers = gatewayHeaders(config);
  const onGatewayHost = (c: Context<AppEnv>) => !hasHostRoutes(config.ROUTES) || !isAppHost(config, new URL(c.req.url).host);
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    app.use(path, async (c, next) => (onGatewayHost(c) ? headers(c, next) : next()));
    app.all(path, async (c, next) => (onGatewayHost(c) ? rest(c, next) : next()));
  }
  // Mounted only when some route is a resource, on its paths alone: other requests never meet
  // it, and its code is loaded on the first request there.
  if (config.ROUTES.some((r) => r.resource !== undefined)) {
    let metadata: Promise<MiddlewareHandler<AppEnv>> | undefined;
    app.use(`${METADATA_PATH}/*`, async (c, next) => (await (metadata ??= import('./routes/protected-resource-metadata').then((m) => m.resourceMetadata(config, gatewayHeaders(config)))))(c, next));
  }
  app.route(config.AUTH_PREFIX, auth);
  // Everything else is an origin's, per ROUTES (no match: 404). No response-altering
  // middleware may run here: origin responses go back as they came.
  app.all('*', proxy({ gatewayHeaders: gatewayHeaders(config) }));
  return app;
}

export const appFor: (config: Config) => Hono<AppEnv> = memoize(buildApp);
