/**
 * Assembles the Gatehouse Hono app for one configuration. Built once per isolate (the auth
 * prefix is a setting, so routes are mounted after the config is known).
 */
import { Hono } from 'hono';
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
import { rateLimit, rateLimitRefusals } from './middleware/rate-limit';
import { refuseMethods } from './middleware/refuse-methods';
import { requestLog } from './observability/request-log';
import { accountRoutes } from './routes/account';
import { accountLinkRoutes } from './routes/account-links';
import { accountSecurityRoutes } from './routes/account-security';
import { adminRoutes } from './routes/admin';
import { emailLoginRoutes } from './routes/email-login';
import { loginPageRoutes } from './routes/login-page';
import { oauthRoutes } from './routes/oauth';
import { emailVerificationRoutes } from './routes/email-verification';
import { passwordResetRoutes } from './routes/password-reset';
import { passkeyRoutes } from './routes/passkeys';
import { passwordRoutes } from './routes/password';
import { providerTokenRoutes } from './routes/provider-tokens';
import { mfaRoutes } from './routes/mfa';
import { refreshNavigationRoute } from './routes/refresh-navigation';
import { secondFactorRoutes } from './routes/second-factors';
import { stepUpRoutes } from './routes/step-up';
import { sessionRoutes } from './routes/session';
import { unmatchedEndpoint } from './routes/unmatched';
import { verifyRoute } from './routes/verify';
import { healthRoute, jwksRoute } from './routes/well-known';

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

  const auth = new Hono<AppEnv>();
  auth.use('*', gatewayHeaders(config));
  auth.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError('payload_too_large', 'The request body is too large (64 KiB at most).');
      },
    }),
  );
  auth.route('/', healthRoute);
  auth.route('/', loginPageRoutes);
  auth.route('/', emailLoginRoutes); // before /login/:provider, which would take `email-code` for a provider
  auth.get('/login/:provider', rateLimit('oauth'));
  auth.get('/callback/:provider', rateLimit('oauth'));
  auth.route('/', oauthRoutes);
  auth.route('/', providerTokenRoutes);
  auth.post('/refresh', rateLimit('refresh'));
  auth.get('/refresh', rateLimit('refresh'));
  auth.get('/verify', rateLimitRefusals('verify_failure'));
  auth.route('/', passwordRoutes);
  auth.route('/', emailVerificationRoutes);
  auth.route('/', passwordResetRoutes);
  auth.route('/', sessionRoutes);
  auth.route('/', refreshNavigationRoute);
  auth.route('/', verifyRoute);
  auth.route('/', accountRoutes);
  auth.route('/', passkeyRoutes);
  auth.route('/', secondFactorRoutes);
  auth.route('/', mfaRoutes);
  auth.route('/', stepUpRoutes);
  auth.route('/', accountSecurityRoutes.route('/', accountLinkRoutes));
  auth.route('/admin', adminRoutes);
  // A mounted sub-app's notFound never runs (the proxy below takes every unmatched path), so
  // the gateway's own paths end in this catch-all: 405 with Allow, or 404 (HTML for browsers).
  const unmatched = unmatchedEndpoint(app);
  auth.all('*', unmatched);

  app.use('/.well-known/*', gatewayHeaders(config));
  app.route('/', jwksRoute);
  app.all('/.well-known/jwks.json', unmatched);
  app.route(config.AUTH_PREFIX, auth);
  // Everything else is an origin's, per ROUTES (no match: 404). No response-altering
  // middleware may run here: origin responses go back as they came.
  app.all('*', proxy({ gatewayHeaders: gatewayHeaders(config) }));
  return app;
}

export const appFor: (config: Config) => Hono<AppEnv> = memoize(buildApp);
