/**
 * The gateway's own endpoints that are not on the hot path: pages, sign-in (password and
 * OAuth), sessions and refresh, provider tokens, account and admin, and the 404/405 catch-all.
 * app.ts loads this module with a dynamic `import()` on the first request that needs it, so
 * none of it (nor hono/jsx, the providers, password hashing and policy, the common-word list)
 * is evaluated at start-up; scripts/build.mjs puts it in chunks of its own.
 *
 * A new endpoint goes here, in the order it should match, unless it serves every proxied or
 * forward-auth request (then app.ts). Paths are under AUTH_PREFIX, as in app.ts; app.ts has
 * already run the gateway middleware (gateway headers, body limit) for them.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { Config } from './config/schema';
import type { AppEnv } from './env';
import { directoryBookmark } from './middleware/directory-bookmark';
import { checkRateLimit, rateLimit } from './middleware/rate-limit';
import { accountRoutes } from './routes/account';
import { accountAppRoutes } from './routes/account-apps';
import { linkedIdentityRoutes } from './routes/linked-identities';
import { accountChangeRoutes } from './routes/account-changes';
import { adminRoutes } from './routes/admin';
import { consoleRoutes } from './routes/console';
import { clientRegistrationRoutes } from './routes/client-registration';
import { emailLoginRoutes } from './routes/email-login';
import { emailVerificationRoutes } from './routes/email-verification';
import { signInPageRoutes } from './routes/sign-in-pages';
import { mfaRoutes } from './routes/mfa';
import { oauthRoutes } from './routes/oauth';
import { oauthTokenRoutes } from './routes/oauth-token';
import { endSessionRoutes } from './routes/end-session';
import { passkeyRoutes } from './routes/passkeys';
import { passwordRoutes } from './routes/password';
import { passwordResetRoutes } from './routes/password-reset';
import { providerLogoutRoutes } from './routes/provider-logout';
import { providerTokenRoutes } from './routes/provider-tokens';
import { refreshNavigationRoute } from './routes/refresh-navigation';
import { secondFactorRoutes } from './routes/second-factors';
import { sharedSignalsRoutes } from './routes/shared-signals';
import { sessionRoutes } from './routes/session';
import { stepUpRoutes } from './routes/step-up';
import { unmatchedEndpoint } from './routes/unmatched';
import { appHostRoutes, gatewaySsoRoute } from './routes/host-sign-in';
import { authorizeRoutes } from './routes/oauth-authorize';
import { DISCOVERY_PATHS, discoveryRoutes } from './routes/oauth-discovery';
import { lazyApp } from './middleware/lazy-app';
import { ApiError } from './http/errors';
import { directoryConfigured } from './auth/scim-tokens';

/**
 * The sessions object's back-channel logout delivery (index.ts loads it from here): off the
 * hot path like everything here, and through this one lazy entry it splits no start-up chunk.
 */
export { deliverLogout } from './auth/backchannel-logout';
/** The logout-notice queue's consumer (index.ts `queue` loads it from here, for the same reason). */
export { deliverLogoutNotices } from './auth/logout-notices';

/**
 * The lazily loaded app for `config`. `hot` is app.ts's app (built before): its routes
 * (health, verify, the JWKS) count with these for the catch-all's `Allow` header.
 */
export function buildLazyApp(config: Config, hot: Hono<AppEnv>): Hono<AppEnv> {
  // Every route of the gateway, read by the catch-all on first use (when all are added).
  const everything = new Hono<AppEnv>();
  const unmatched = unmatchedEndpoint(everything);

  const auth = new Hono<AppEnv>();
  // After a change, the browser's next reads see it (storage/directory.ts). Refresh, sign-out
  // and ending sessions change only the sessions' objects (and audit rows): no bookmark, and
  // the hot refresh path stays free of the extra query.
  auth.use('*', directoryBookmark({ except: /^\/(?:refresh|logout|logout-all|sessions\/[^/]+|account\/sessions\/[^/]+\/end|token|revoke|introspect|userinfo|backchannel-logout\/[^/]+|ssf\/events\/[^/]+)$/ }));
  auth.get('/callback/:provider', directoryBookmark({ reads: true }));
  auth.route('/', signInPageRoutes);
  auth.route('/', emailLoginRoutes); // before /login/:provider, which would take `email-code` for a provider
  auth.get('/login/:provider', rateLimit('oauth'));
  auth.get('/callback/:provider', rateLimit('oauth'));
  auth.route('/', oauthRoutes);
  // A sign-in provider's back channel and a Shared Signals transmitter's push (no cookie read,
  // nothing minted): each route counts its own refusals (4xx) with the provider sign-ins, before
  // it records them; a token the sender signed always passes.
  auth.route('/', providerLogoutRoutes);
  auth.route('/', sharedSignalsRoutes);
  auth.route('/', providerTokenRoutes);
  auth.post('/refresh', rateLimit('refresh'));
  auth.get('/refresh', rateLimit('refresh'));
  auth.route('/', passwordRoutes);
  auth.route('/', emailVerificationRoutes);
  auth.route('/', passwordResetRoutes);
  auth.route('/', sessionRoutes);
  auth.route('/', refreshNavigationRoute);
  // Each call mints a code (a row in the user's object, an audit row): counted like the exchange.
  auth.get('/sso', rateLimit('refresh'));
  auth.route('/', gatewaySsoRoute);
  // The authorization endpoint mints codes (and its consent answers do): counted as /sso is.
  auth.on(['GET', 'POST'], '/authorize', rateLimit('refresh'));
  auth.route('/', authorizeRoutes);
  // The authorization server's back channel: no cookie is read there, so any origin may call
  // token, revocation and userinfo (browser apps with PKCE); each mint counts like a refresh.
  const anyOrigin = cors({ origin: '*', allowMethods: ['GET', 'POST'], allowHeaders: ['authorization', 'content-type'], maxAge: 600 });
  for (const path of ['/token', '/revoke', '/userinfo']) auth.use(path, anyOrigin);
  for (const path of ['/token', '/revoke', '/introspect']) auth.post(path, rateLimit('refresh'));
  auth.route('/', oauthTokenRoutes);
  auth.route('/', endSessionRoutes);
  auth.route('/', accountRoutes);
  auth.route('/', accountAppRoutes);
  auth.route('/', passkeyRoutes);
  auth.route('/', secondFactorRoutes);
  auth.route('/', mfaRoutes);
  auth.route('/', stepUpRoutes);
  auth.route('/', accountChangeRoutes.route('/', linkedIdentityRoutes));
  // The operators' console's pages (the home, and everything under /admin/console) before the
  // JSON admin API, whose middleware would answer them as API calls.
  auth.route('/admin', consoleRoutes);
  auth.route('/admin', adminRoutes);
  // Each registration stores a client: counted per IP, on its own binding if there is one.
  auth.post('/oauth/register', rateLimit('register_client'));
  auth.route('/', clientRegistrationRoutes);
  // SCIM provisioning, only when the directory has a token (SCIM_TOKEN, or one an administrator
  // created: then known only from D1, asked on each SCIM request): its routes and the two SCIM
  // libraries load on the first SCIM request, never with the rest of the gateway. Off, the path
  // is the catch-all's 404.
  const scimApp = lazyApp(async () => new Hono<AppEnv>().route(`${config.AUTH_PREFIX}/scim/v2`, (await import('./routes/scim')).scimRoutes));
  if (config.SCIM_TOKEN !== undefined) auth.all('/scim/v2/*', scimApp);
  else {
    // Whether SCIM is on is then a D1 read, so the request is counted against `scim` first: no
    // anonymous request reaches D1 uncounted. Over the limit, the SCIM routes answer their 429
    // without the read, whether SCIM is on or not.
    auth.all('/scim/v2/*', async (c, next) => {
      try {
        await checkRateLimit(c, 'scim');
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 'rate_limited')) throw e;
        c.set('scimRateLimit', 'over');
        return scimApp(c, next);
      }
      c.set('scimRateLimit', 'counted');
      return (await directoryConfigured(c)) ? scimApp(c, next) : next();
    });
  }
  // A mounted sub-app's notFound never runs, so the gateway's own paths end in this
  // catch-all: 405 with Allow, or 404 (HTML for browsers).
  auth.all('*', unmatched);

  const app = new Hono<AppEnv>();
  app.all('/.well-known/jwks.json', unmatched);
  app.route('/', discoveryRoutes);
  for (const path of DISCOVERY_PATHS) app.all(path, unmatched);
  app.route(config.AUTH_PREFIX, auth);
  everything.route('/', hot).route('/', app);
  return app;
}

/**
 * The gateway's paths on an app host (README "Hosts"): single sign-on's callback and sign-out,
 * and 404 for the rest (routes/host-sign-in.ts). `headers`: the gateway's security headers.
 */
export function buildAppHostApp(config: Config, headers: MiddlewareHandler<AppEnv>): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', headers);
  // Exchanging a code counts with refreshes: each is a token minted from something presented.
  app.get(`${config.AUTH_PREFIX}/sso/callback`, rateLimit('refresh'));
  app.route(config.AUTH_PREFIX, appHostRoutes);
  return app;
}
