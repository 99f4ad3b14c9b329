/**
 * What a client may be registered with (README "Apps (OpenID Connect)"): the one set of rules
 * for the admin API, dynamic registration (RFC 7591) and client ID metadata documents, so a
 * client that came in by any of them obeys the same limits. Every problem is collected and
 * named by its field; {@link metadataError} turns them into one RFC 7591 error.
 *
 * Redirect URIs (RFC 6749 §3.1.2, RFC 8252, OAuth 2.1): absolute, no fragment, no user info,
 * no wildcard (they are compared exactly); https, or http on a loopback address (a native or
 * local app), or a private-use scheme in reverse-domain form for a public (native) client.
 */
import * as v from 'valibot';
import type { Config } from '../config/schema';
import { ApiError } from '../http/errors';
import type { ClientAuthMethod, ClientGrantType, OAuthClient } from '../storage/oauth-clients';

export const KNOWN_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const satisfies readonly ClientGrantType[];
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const satisfies readonly ClientAuthMethod[];

export const MAX_URIS = 20;
export const MAX_URI_LENGTH = 2000;
export const MAX_NAME_LENGTH = 100;
export const MAX_AUDIENCES = 20;
const MAX_JWKS_KEYS = 10;
const MAX_JWKS_BYTES = 8 * 1024;

/** Hosts an `http:` redirect URI may name: the device itself (RFC 8252 §7.3). */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', '[::1]', 'localhost']);
/** A private-use scheme in reverse-domain form (RFC 8252 §7.1), such as `com.example.app:`. */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;

/** One problem with one field (`redirect_uris.1`, `jwks.keys.0`). */
export interface MetadataProblem {
  field: string;
  message: string;
}

/** Which kinds of redirect URI a client may register. */
export interface RedirectRules {
  /** https URIs (any host). */
  https: boolean;
  /** Private-use schemes (public, native clients only). */
  privateUse: boolean;
  /** Host names no redirect URI may name (the operator's, for a client that registered itself). */
  refusedHost?: (hostname: string) => boolean;
}

/** True for the gateway's own host name (any port) or a name an app host serves (`*.apps.example.com` included). */
export function operatorHost(hostname: string, config: Pick<Config, 'PUBLIC_URL' | 'ROUTES'>): boolean {
  const name = hostname.toLowerCase();
  if (name === new URL(config.PUBLIC_URL).hostname) return true;
  return config.ROUTES.some((r) => r.host !== undefined && (r.host.startsWith('*.') ? name.endsWith(r.host.slice(1).toLowerCase()) : name === r.host.toLowerCase()));
}

/**
 * The redirect URIs a dynamically registered client (or a metadata document) may have, by
 * DCR_REDIRECT_URI_POLICY; private-use schemes only for a public client. Never on the gateway's
 * host or an app host: those are the operator's, and the consent page would show one as the app's.
 */
export function dynamicRedirectRules(config: Pick<Config, 'DCR_REDIRECT_URI_POLICY' | 'PUBLIC_URL' | 'ROUTES'>, kind: OAuthClient['kind'] = 'public'): RedirectRules {
  return {
    https: config.DCR_REDIRECT_URI_POLICY === 'loopback-and-https',
    privateUse: kind === 'public',
    refusedHost: (hostname) => operatorHost(hostname, config),
  };
}

/** What is wrong with `uri` as a redirect URI under `rules`, or null. */
export function redirectUriProblem(uri: string, rules: RedirectRules): string | null {
  if (uri.length > MAX_URI_LENGTH) return `is too long (${MAX_URI_LENGTH} characters at most)`;
  if (uri.includes('*')) return 'must not contain a wildcard (redirect URIs are compared exactly)';
  if (/[\s\\]/.test(uri)) return 'must not contain spaces or backslashes';
  if (uri.includes('#')) return 'must not have a fragment';
  if (!URL.canParse(uri)) return 'must be an absolute URI';
  const url = new URL(uri);
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password';
  if (url.protocol === 'https:' && rules.refusedHost?.(url.hostname)) return "must not be on the gateway's own host or an app host";
  if (url.protocol === 'https:') return rules.https ? null : 'must be http on a loopback address or a private-use scheme (DCR_REDIRECT_URI_POLICY=loopback-only)';
  if (url.protocol === 'http:') {
    return LOOPBACK_HOSTS.has(url.hostname) ? null : 'must use https (http only on 127.0.0.1, [::1] or localhost)';
  }
  if (PRIVATE_USE_SCHEME.test(url.protocol)) return rules.privateUse ? null : 'may use a private-use scheme only for a public (native) client';
  return 'must use https, http on a loopback address, or (public clients) a private-use scheme such as com.example.app:';
}

/** What is wrong with a server-side URL the gateway itself calls (back-channel logout), or null. */
function serverUrlProblem(uri: string, config: Pick<Config, 'isDevelopment'>): string | null {
  if (uri.length > MAX_URI_LENGTH) return `is too long (${MAX_URI_LENGTH} characters at most)`;
  if (uri.includes('#') || !URL.canParse(uri)) return 'must be an absolute https URL without a fragment';
  const url = new URL(uri);
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password';
  if (url.protocol === 'https:' || (config.isDevelopment && url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) return null;
  return 'must use https';
}

/**
 * What is wrong with `audience` as a resource this client's tokens may be for, or null. Never
 * the gateway's own origin or an app host's: a grant token's `aud` must not be what session
 * tokens carry (tokens/grant-token.ts).
 */
export function audienceProblem(audience: string, config: Pick<Config, 'isDevelopment' | 'PUBLIC_URL' | 'accessTokenAudience' | 'ROUTES' | 'AUTH_PREFIX'>): string | null {
  const problem = serverUrlProblem(audience, config);
  if (problem) return problem;
  const url = new URL(audience);
  // The gateway's own endpoints are never a client's resource: the userinfo URL is the audience
  // of a user's token, and a service's token for it would go where a person is expected.
  const path = url.pathname.toLowerCase();
  const prefix = config.AUTH_PREFIX.toLowerCase();
  if (url.origin === new URL(config.PUBLIC_URL).origin && (path === prefix || path.startsWith(`${prefix}/`))) {
    return `must not be one of the gateway's own endpoints (under ${config.AUTH_PREFIX})`;
  }
  const bare = audience.replace(/\/$/, '') === url.origin;
  // An app host, or a name a wildcard host (`*.apps.example.com`) serves.
  const appHost = url.hostname !== new URL(config.PUBLIC_URL).hostname && operatorHost(url.hostname, config);
  if (audience === config.accessTokenAudience || (bare && (url.origin === new URL(config.PUBLIC_URL).origin || appHost))) {
    return "must not be the gateway's or an app host's own origin (session tokens carry that audience)";
  }
  return null;
}

const MEMBERS_OF: Record<string, readonly string[]> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] };
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The algorithms a client may sign its assertions with: asymmetric only (no `none`, no HS*). */
export const ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** The client's public keys as a JWK Set, or the problems with what was sent. */
export function parseJwks(value: unknown, field = 'jwks'): { jwks: { keys: Record<string, unknown>[] } } | { problems: MetadataProblem[] } {
  const fail = (message: string, at = field) => ({ problems: [{ field: at, message }] });
  if (!value || typeof value !== 'object' || Array.isArray(value) || !('keys' in value) || !Array.isArray(value.keys)) {
    return fail('must be a JWK Set: an object with a "keys" list');
  }
  if (JSON.stringify(value).length > MAX_JWKS_BYTES) return fail(`is too large (${MAX_JWKS_BYTES} bytes at most)`);
  const keys: unknown[] = value.keys;
  if (keys.length === 0 || keys.length > MAX_JWKS_KEYS) return fail(`must hold 1 to ${MAX_JWKS_KEYS} keys`);
  const problems: MetadataProblem[] = [];
  const out: Record<string, unknown>[] = [];
  keys.forEach((key, i) => {
    const at = `${field}.keys.${i}`;
    if (!key || typeof key !== 'object' || Array.isArray(key)) return void problems.push({ field: at, message: 'must be a JWK object' });
    const jwk: Record<string, unknown> = { ...key };
    const members = typeof jwk.kty === 'string' ? MEMBERS_OF[jwk.kty] : undefined;
    if (!members) return void problems.push({ field: at, message: 'must be a public RSA, EC or OKP key (kty)' });
    if (PRIVATE_MEMBERS.some((m) => m in jwk)) return void problems.push({ field: at, message: 'must be a public key: it holds private key material' });
    if (members.some((m) => typeof jwk[m] !== 'string')) return void problems.push({ field: at, message: `must have ${members.join(', ')}` });
    if (jwk.use !== undefined && jwk.use !== 'sig') return void problems.push({ field: at, message: 'must be a signing key (use "sig")' });
    if (jwk.alg !== undefined && !(ASSERTION_ALGORITHMS as readonly unknown[]).includes(jwk.alg)) {
      return void problems.push({ field: at, message: `alg must be one of ${ASSERTION_ALGORITHMS.join(', ')}` });
    }
    out.push(jwk);
  });
  return problems.length > 0 ? { problems } : { jwks: { keys: out } };
}

/** The fields of a client an admin registers or changes (RFC 7591 names where there is one). */
export type ClientMetadata = Pick<
  OAuthClient,
  'name' | 'kind' | 'authMethod' | 'jwks' | 'redirectUris' | 'postLogoutRedirectUris' | 'grantTypes' | 'allowedScopes' | 'allowedAudiences' | 'backchannelLogoutUri' | 'firstParty'
>;

/** What a client that describes itself says (dynamic registration, a client ID metadata document). */
export interface SelfDescription {
  token_endpoint_auth_method: ClientMetadata['authMethod'];
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: ClientMetadata['grantTypes'];
  scope?: string;
}

/**
 * The metadata of a client that describes itself: public or secret-based as it says, the known
 * scopes it asks for (all without `scope`), and never what only an admin may give (first-party,
 * audiences of its own, a back-channel logout URI).
 */
export function selfDescribedMetadata(doc: SelfDescription, name: string, jwks: ClientMetadata['jwks']): ClientMetadata {
  const requested = doc.scope?.split(' ').filter(Boolean);
  return {
    name,
    kind: doc.token_endpoint_auth_method === 'none' ? 'public' : 'confidential',
    authMethod: doc.token_endpoint_auth_method,
    jwks,
    redirectUris: doc.redirect_uris,
    postLogoutRedirectUris: doc.post_logout_redirect_uris,
    grantTypes: [...new Set(doc.grant_types)],
    allowedScopes: KNOWN_SCOPES.filter((s) => requested === undefined || requested.includes(s)),
    allowedAudiences: [],
    backchannelLogoutUri: null,
    firstParty: false,
  };
}

/**
 * The checks that look at several fields at once and at each URI under the client's kind;
 * every problem, not the first. `config` decides what an audience may be.
 */
export function clientProblems(m: ClientMetadata, config: Pick<Config, 'isDevelopment' | 'PUBLIC_URL' | 'accessTokenAudience' | 'ROUTES' | 'AUTH_PREFIX'>, rules?: RedirectRules): MetadataProblem[] {
  const problems: MetadataProblem[] = [];
  const redirect = rules ?? { https: true, privateUse: m.kind === 'public' };
  m.redirectUris.forEach((uri, i) => {
    const problem = redirectUriProblem(uri, redirect);
    if (problem) problems.push({ field: `redirect_uris.${i}`, message: problem });
  });
  m.postLogoutRedirectUris.forEach((uri, i) => {
    const problem = redirectUriProblem(uri, redirect);
    if (problem) problems.push({ field: `post_logout_redirect_uris.${i}`, message: problem });
  });
  m.allowedAudiences.forEach((aud, i) => {
    const problem = audienceProblem(aud, config);
    if (problem) problems.push({ field: `allowed_audiences.${i}`, message: problem });
  });
  if (m.backchannelLogoutUri !== null) {
    const problem = serverUrlProblem(m.backchannelLogoutUri, config);
    if (problem) problems.push({ field: 'backchannel_logout_uri', message: problem });
  }
  if (m.kind === 'public') {
    if (m.authMethod !== 'none') problems.push({ field: 'token_endpoint_auth_method', message: 'must be "none" for a public client (it cannot keep a secret)' });
    if (m.grantTypes.includes('client_credentials')) problems.push({ field: 'grant_types', message: 'client_credentials is only for confidential clients' });
  } else if (m.authMethod === 'none') {
    problems.push({ field: 'token_endpoint_auth_method', message: 'a confidential client authenticates: client_secret_basic, client_secret_post or private_key_jwt' });
  }
  if (m.authMethod === 'private_key_jwt' && m.jwks === null) problems.push({ field: 'jwks', message: 'is required for private_key_jwt (its public keys)' });
  if (m.authMethod !== 'private_key_jwt' && m.jwks !== null) problems.push({ field: 'jwks', message: 'is only for private_key_jwt clients' });
  if (m.grantTypes.includes('authorization_code') && m.redirectUris.length === 0) {
    problems.push({ field: 'redirect_uris', message: 'needs at least one URI for the authorization_code grant' });
  }
  if (m.grantTypes.includes('refresh_token') && !m.grantTypes.includes('authorization_code')) {
    problems.push({ field: 'grant_types', message: 'refresh_token comes with authorization_code' });
  }
  if (m.firstParty && m.kind === 'public' && m.redirectUris.some((u) => !u.startsWith('https:'))) {
    // Any app on the device can listen on a loopback port or claim a scheme: it must not skip consent.
    problems.push({ field: 'first_party', message: 'a public client with loopback or private-use redirect URIs cannot skip consent' });
  }
  return problems;
}

/** Valibot issues as problems named by their field. */
export function issueProblems(issues: readonly v.BaseIssue<unknown>[]): MetadataProblem[] {
  return issues.map((issue) => ({
    field: issue.path?.map((p) => String(p.key)).join('.') || 'body',
    message: issue.received === 'undefined' && issue.expected !== 'never' ? 'is required' : issue.message,
  }));
}

/**
 * One RFC 7591 §3.2.2 error for all the problems: `invalid_redirect_uri` when one of the
 * redirect URIs is among them, else `invalid_client_metadata`; every field is named in the description and in
 * `invalid_fields`.
 */
export function metadataError(problems: readonly MetadataProblem[]): ApiError {
  const redirect = problems.some((p) => /^(redirect_uris|post_logout_redirect_uris)\.\d+$/.test(p.field));
  const description = problems.map((p) => `Field "${p.field}": ${p.message}`).join('; ');
  return new ApiError(redirect ? 'invalid_redirect_uri' : 'invalid_client_metadata', description, {
    fields: { invalid_fields: Object.fromEntries(problems.map((p) => [p.field, p.message])) },
  });
}

/** A client's display name: trimmed, printable, bounded. */
export const clientName = v.pipe(
  v.string('must be text'),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(MAX_NAME_LENGTH, `is too long (${MAX_NAME_LENGTH} characters at most)`),
  // Controls, and the invisible and bidirectional formatting characters that make a name read as another (`Acme \u202enimda`).
  v.check((s) => !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(s), 'must not contain control, invisible or text-direction characters'),
);

/** A list of URIs, checked one by one later (the rules depend on the client's kind). */
export const uriList = (max = MAX_URIS) =>
  v.pipe(
    v.array(v.pipe(v.string('must be a URI'), v.maxLength(MAX_URI_LENGTH, `is too long (${MAX_URI_LENGTH} characters at most)`)), 'must be a list of URIs'),
    v.maxLength(max, `must have at most ${max} URIs`),
    v.check((xs) => new Set(xs).size === xs.length, 'must not repeat a URI'),
  );

export const scopeList = v.pipe(
  v.array(v.picklist(KNOWN_SCOPES, `must be one of: ${KNOWN_SCOPES.join(', ')}`), 'must be a list of scopes'),
  v.transform((xs) => [...new Set(xs)]),
);
