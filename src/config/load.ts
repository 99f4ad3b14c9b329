/**
 * Parses the Worker's settings into a {@link Config}, once per isolate.
 *
 * The `env` object a Worker receives is the same for every request of an isolate, so the
 * result is cached against it; a test that builds a fresh env gets a fresh parse.
 */
import * as v from 'valibot';
import { hostRoutesProblem } from './route-hosts';
import { logoutNotifyProblem, routesNeedGroups } from './routes-schema';
import { configSchema, type Config } from './schema';

/** A bad or missing setting. `setting` is safe to show; no value is ever included. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; error: ConfigError };

const cache = new WeakMap<object, ConfigResult>();

export function loadConfig(env: object): ConfigResult {
  let result = cache.get(env);
  if (!result) {
    result = parseConfig(env);
    cache.set(env, result);
  }
  return result;
}

export function parseConfig(env: object): ConfigResult {
  const parsed = v.safeParse(configSchema, env);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)) ?? [];
    const setting = path[0] ?? 'configuration';
    const where = path.length > 1 ? ` (at ${path.slice(1).join('.')})` : '';
    return { ok: false, error: new ConfigError(setting, `${issue.message}${where}`) };
  }
  const raw = parsed.output;
  const isDevelopment = raw.ENVIRONMENT === 'development';
  if (!raw.PUBLIC_URL && !isDevelopment) {
    return { ok: false, error: new ConfigError('PUBLIC_URL', 'is required in production') };
  }
  if (raw.SIGNING_KEYS === undefined && !isDevelopment) {
    return { ok: false, error: new ConfigError('SIGNING_KEYS', 'is required in production (a JWK Set of private keys)') };
  }
  if (!isDevelopment && raw.PUBLIC_URL?.startsWith('http:')) {
    return { ok: false, error: new ConfigError('PUBLIC_URL', 'must use https in production') };
  }
  if (raw.STORE_PROVIDER_TOKENS && !raw.TOKEN_ENCRYPTION_KEY) {
    return { ok: false, error: new ConfigError('TOKEN_ENCRYPTION_KEY', 'is required when STORE_PROVIDER_TOKENS=true') };
  }
  for (const [id, secret] of [
    ['GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET'],
    ['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET'],
    ['GITLAB_CLIENT_ID', 'GITLAB_CLIENT_SECRET'],
  ] as const) {
    if (Boolean(raw[id]) !== Boolean(raw[secret])) {
      return { ok: false, error: new ConfigError(raw[id] ? secret : id, `must be set together with ${raw[id] ? id : secret}`) };
    }
  }
  if (raw.DEV_OIDC_ISSUER && !isDevelopment) {
    // The dev sign-in trusts a local test server that signs in anyone: never in production.
    return { ok: false, error: new ConfigError('DEV_OIDC_ISSUER', 'is for development only and must not be set in production') };
  }
  if (routesNeedGroups(raw.ROUTES) && !raw.TOKEN_ENCRYPTION_KEY && !isDevelopment) {
    // Each session keeps its provider grant, encrypted under it, to re-read groups at refresh.
    return { ok: false, error: new ConfigError('TOKEN_ENCRYPTION_KEY', 'is required when a route decides on groups (it encrypts the provider grant each session keeps to re-read them)') };
  }
  if (raw.MFA_REQUIRED_ROLES.length > 0 && !raw.TOKEN_ENCRYPTION_KEY && !isDevelopment) {
    // Authenticator-app secrets are encrypted under a key derived from it (tokens/totp-secret-crypto.ts).
    return { ok: false, error: new ConfigError('TOKEN_ENCRYPTION_KEY', 'is required when MFA_REQUIRED_ROLES is set (it encrypts authenticator-app secrets)') };
  }
  if (raw.TOKEN_ENCRYPTION_KEY && raw.TOKEN_ENCRYPTION_KEY.length < 32) {
    return { ok: false, error: new ConfigError('TOKEN_ENCRYPTION_KEY', 'must be at least 32 characters (e.g. openssl rand -base64 32)') };
  }
  if (raw.OIDC_ISSUER && !isDevelopment && new URL(raw.OIDC_ISSUER).protocol !== 'https:') {
    // Discovery over plain http lets anyone on the path swap the token endpoint and key set:
    // they would receive the client secret and codes and could mint ID tokens for anyone.
    return { ok: false, error: new ConfigError('OIDC_ISSUER', 'must use https in production') };
  }
  if (raw.OIDC_ISSUER && !raw.OIDC_CLIENT_ID) {
    return { ok: false, error: new ConfigError('OIDC_CLIENT_ID', 'is required when OIDC_ISSUER is set') };
  }
  const publicUrl = raw.PUBLIC_URL ?? 'http://localhost:8787';
  const hostProblem = hostRoutesProblem(raw.ROUTES, publicUrl);
  if (hostProblem) return { ok: false, error: new ConfigError('ROUTES', hostProblem) };
  const notifyProblem = logoutNotifyProblem(raw.ROUTES, { isDevelopment });
  if (notifyProblem) return { ok: false, error: new ConfigError('ROUTES', notifyProblem) };
  if (raw.ROUTES.some((r) => r.logout_notify !== undefined) && !('LOGOUT_NOTICES' in env && typeof env.LOGOUT_NOTICES === 'object' && env.LOGOUT_NOTICES !== null)) {
    // Notices owed and nowhere to queue them: refuse to start rather than drop them silently.
    return { ok: false, error: new ConfigError('LOGOUT_NOTICES', 'a route sets logout_notify: the Worker needs the LOGOUT_NOTICES queue binding (wrangler.toml [[queues.producers]])') };
  }
  const emailBinding = 'EMAIL' in env && typeof env.EMAIL === 'object' && env.EMAIL !== null;
  const mailTransport = raw.SMTP_URL ? 'smtp' : emailBinding ? 'email-service' : null;
  if (raw.EMAIL_VERIFICATION && raw.EMAIL_VERIFICATION !== 'off' && mailTransport === null) {
    // A verification that can never be mailed would lock every new password account out.
    return { ok: false, error: new ConfigError('EMAIL_VERIFICATION', 'needs a mail transport: set SMTP_URL or an EMAIL send_email binding, or set it to "off"') };
  }
  const config: Config = {
    ...raw,
    groupsNeeded: routesNeedGroups(raw.ROUTES),
    PUBLIC_URL: publicUrl,
    isDevelopment,
    accessTokenAudience: publicUrl,
    mailTransport,
    // With mail, addresses are proven by default (so allow lists and ADMIN_EMAILS can match
    // password accounts, and registration stops revealing accounts); without it, nothing can be.
    EMAIL_VERIFICATION: raw.EMAIL_VERIFICATION ?? (mailTransport ? 'required' : 'off'),
    mailFrom: {
      email: raw.EMAIL_FROM?.email ?? `no-reply@${new URL(publicUrl).hostname}`,
      name: raw.EMAIL_FROM?.name ?? raw.APP_NAME,
    },
  };
  return { ok: true, config };
}
