/**
 * The authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1, RFC 7636, RFC
 * 8707): checked in two stages, because the first decides where errors may go.
 *
 * 1. The client and its redirect URI ({@link checkClientAndRedirect}): an enabled client and a
 *    `redirect_uri` equal, character for character, to one it registered. Until both hold, an
 *    error is a page of ours and never a redirect, so the endpoint is no open redirector.
 * 2. The rest ({@link checkAuthorizationRequest}): every error from here on goes back to that
 *    redirect URI with `error`, `error_description`, `state` and `iss` (RFC 9207).
 *
 * Also the request's canonical form (the URL a browser comes back to after signing in or
 * stepping up, and what the consent form's token is bound to) and that token itself.
 */
import type { Context } from 'hono';
import * as base64url from 'jose/base64url';
import { consentFormKey } from '../crypto/derive-key';
import type { AppEnv } from '../env';
import { protectedResources } from '../config/protected-resources';
import { queryValue } from '../http/query-value';
import { safeReturnTo } from '../http/return-to';
import { findClient, type OAuthClient } from './oauth-clients';

/** RFC 6749 §4.1.2.1 and OpenID Connect Core §3.1.2.6 error codes, and RFC 8707's. */
export type AuthorizeErrorCode =
  | 'invalid_request'
  | 'unauthorized_client'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'invalid_target';

/** An error to send back to the client's redirect URI. */
export class AuthorizeError extends Error {
  constructor(
    readonly code: AuthorizeErrorCode,
    readonly description: string,
  ) {
    super(description);
    this.name = 'AuthorizeError';
  }
}

/** An error before the redirect URI is known to be the client's: shown as a page, never redirected. */
export class AuthorizePageError extends Error {
  constructor(
    readonly title: string,
    readonly description: string,
  ) {
    super(description);
    this.name = 'AuthorizePageError';
  }
}

/** The parameters the endpoint reads, each at most once, with their longest allowed length. */
const LIMITS = {
  client_id: 256,
  redirect_uri: 512,
  response_type: 64,
  response_mode: 32,
  scope: 512,
  state: 512,
  nonce: 256,
  code_challenge: 43,
  code_challenge_method: 16,
  prompt: 64,
  max_age: 10,
  acr_values: 128,
  resource: 512,
  login_hint: 256,
  ui_locales: 64,
  claims_locales: 64,
  display: 16,
  id_token_hint: 4096,
  request: 4096,
  request_uri: 512,
  auth_after: 64,
} as const;

type Param = keyof typeof LIMITS;

const isParam = (name: string): name is Param => Object.hasOwn(LIMITS, name);

/** The prompts this server honours. */
export const PROMPT_VALUES = ['none', 'login', 'consent'] as const;
type Prompt = (typeof PROMPT_VALUES)[number];
const isPrompt = (p: string): p is Prompt => (PROMPT_VALUES as readonly string[]).includes(p);

/** The `acr_values` this server can satisfy through step-up: a second factor, a passkey. */
export const ACR_VALUES = ['mfa', 'passkey'] as const;
type Acr = (typeof ACR_VALUES)[number];

/** Visible ASCII and space (RFC 6749 `state` is VSCHAR); nothing that breaks a URL or a log line. */
const PRINTABLE = /^[\x20-\x7e]*$/;
/** RFC 6749 §3.3 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** RFC 7636 §4.2: BASE64URL(SHA256(verifier)), 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** The request's parameters as sent: one value each, or a list when sent more than once. */
export type RawParams = Map<string, string[]>;

export function paramsOf(entries: Iterable<[string, string]>): RawParams {
  const params: RawParams = new Map();
  for (const [k, v] of entries) params.set(k, [...(params.get(k) ?? []), v]);
  return params;
}

/** The client and its redirect URI, checked (stage 1). */
export interface ClientAndRedirect {
  client: OAuthClient;
  redirectUri: string;
  /** The `state` to send back with an error, if one was sent once and is printable. */
  state: string | null;
}

/** A checked authorization request (stage 2). */
export interface AuthorizationRequest extends ClientAndRedirect {
  scopes: string[];
  nonce: string | null;
  codeChallenge: string;
  prompt: ReadonlySet<Prompt>;
  maxAge: number | null;
  acr: Acr[];
  resource: string | null;
  /**
   * Set by this server when it sends the browser to sign in or step up (`<time>.<mac>`, made by
   * {@link authAfterToken}): the sign-in must be from then on. As sent; {@link authAfterTime}
   * says whether it is this server's, for this request, and recent.
   */
  authAfter: string | null;
  loginHint: string | null;
}

const single = (params: RawParams, name: string): string | undefined => {
  const values = params.get(name);
  return values && values.length === 1 ? values[0] : undefined;
};

/** Stage 1: who the client is and where it may be answered. Throws {@link AuthorizePageError}. */
export async function checkClientAndRedirect(c: Context<AppEnv>, params: RawParams): Promise<ClientAndRedirect> {
  const clientIds = params.get('client_id') ?? [];
  if (clientIds.length !== 1 || clientIds[0] === '') throw new AuthorizePageError('This sign-in link is incomplete', 'The app did not say who it is (client_id is missing or repeated). Go back to the app and try again.');
  const clientId = clientIds[0]!;
  const client = clientId.length <= LIMITS.client_id && PRINTABLE.test(clientId) ? await findClient(c, clientId) : null;
  if (!client) throw new AuthorizePageError('Unknown app', 'The app that sent you here is not registered with this sign-in service, or it has been disabled.');
  const uris = params.get('redirect_uri') ?? [];
  if (uris.length !== 1 || uris[0] === '') throw new AuthorizePageError('This sign-in link is incomplete', `${client.name} did not say where to return to (redirect_uri is missing or repeated).`);
  const redirectUri = uris[0]!;
  // Exact string comparison: no normalising of case, trailing slashes, ports or query.
  if (redirectUri.length > LIMITS.redirect_uri || !client.redirectUris.includes(redirectUri) || !URL.canParse(redirectUri)) {
    throw new AuthorizePageError('This sign-in link is not valid', `The address to return to is not one ${client.name} registered. Nothing was sent to it.`);
  }
  const state = single(params, 'state');
  return { client, redirectUri, state: state !== undefined && state.length <= LIMITS.state && PRINTABLE.test(state) ? state : null };
}

const spaceList = (value: string | undefined) => (value === undefined ? [] : value.split(' ').filter(Boolean));

/** Stage 2: everything else, against the client. Throws {@link AuthorizeError}. */
export function checkAuthorizationRequest(c: Context<AppEnv>, params: RawParams, target: ClientAndRedirect): AuthorizationRequest {
  const { client } = target;
  const bad = (description: string) => new AuthorizeError('invalid_request', description);
  for (const [name, values] of params) {
    if (values.length > 1) throw bad(`The parameter ${name} must be sent once.`);
    const limit: number | undefined = isParam(name) ? LIMITS[name] : undefined;
    if (limit !== undefined && values[0]!.length > limit) throw bad(`The parameter ${name} is too long (${limit} characters at most).`);
    if (limit !== undefined && !PRINTABLE.test(values[0]!)) throw bad(`The parameter ${name} must be printable ASCII.`);
  }
  const get = (name: Param) => single(params, name);
  const responseType = get('response_type');
  if (responseType === undefined || responseType === '') throw bad('response_type is required (this server supports "code").');
  if (responseType !== 'code') throw new AuthorizeError('unsupported_response_type', 'Only the authorization code flow (response_type=code) is supported.');
  const mode = get('response_mode');
  if (mode !== undefined && mode !== 'query') throw bad('Only response_mode=query is supported.');
  if (!client.grantTypes.includes('authorization_code')) throw new AuthorizeError('unauthorized_client', 'This client may not use the authorization code flow.');
  if (get('request') !== undefined || get('request_uri') !== undefined) throw bad('Request objects (request, request_uri) are not supported.');

  const method = get('code_challenge_method');
  const challenge = get('code_challenge');
  if (challenge === undefined) throw bad('PKCE is required: send code_challenge and code_challenge_method=S256.');
  if (method !== 'S256') throw bad('code_challenge_method must be S256 (plain is not accepted).');
  if (!S256_CHALLENGE.test(challenge)) throw bad('code_challenge must be 43 base64url characters (the S256 of the verifier).');

  const scopes = [...new Set(spaceList(get('scope')))];
  for (const scope of scopes) {
    if (!SCOPE_TOKEN.test(scope)) throw new AuthorizeError('invalid_scope', 'The scope is malformed.');
    if (!client.allowedScopes.includes(scope)) throw new AuthorizeError('invalid_scope', `This client may not ask for the scope "${scope}".`);
  }

  const prompt = new Set<Prompt>();
  for (const p of spaceList(get('prompt'))) {
    if (!isPrompt(p)) throw bad(`The prompt value "${p}" is not supported.`);
    prompt.add(p);
  }
  if (prompt.has('none') && prompt.size > 1) throw bad('prompt=none cannot be combined with other prompt values.');

  const maxAgeText = get('max_age');
  if (maxAgeText !== undefined && !/^\d{1,10}$/.test(maxAgeText)) throw bad('max_age must be a whole number of seconds.');

  const acr = spaceList(get('acr_values')).filter((a): a is Acr => (ACR_VALUES as readonly string[]).includes(a));

  const resource = get('resource') ?? null;
  if (resource !== null) {
    const config = c.get('config');
    const known = protectedResources(config.ROUTES, config.PUBLIC_URL).some((r) => r.url === resource) || client.allowedAudiences.includes(resource);
    if (!known) throw new AuthorizeError('invalid_target', 'The resource is not one this client may ask for.');
  }

  return {
    ...target,
    scopes,
    nonce: get('nonce') ?? null,
    codeChallenge: challenge,
    prompt,
    maxAge: maxAgeText === undefined ? null : Number(maxAgeText),
    acr,
    resource,
    authAfter: get('auth_after') ?? null,
    loginHint: get('login_hint') ?? null,
  };
}

/**
 * The request's canonical query string: the parameters this server acts on, in a fixed order,
 * each escaped as a query value (so the URL passes `safeReturnTo`). `prompt` and `auth_after`
 * as given, unless overridden (sending the browser to sign in turns `prompt=login` into a time).
 */
export function canonicalQuery(r: AuthorizationRequest, override: { prompt?: Prompt[]; authAfter?: string | null } = {}): string {
  const prompt = override.prompt ?? [...r.prompt];
  const authAfter = override.authAfter === undefined ? r.authAfter : override.authAfter;
  const pairs: [string, string | null][] = [
    ['response_type', 'code'],
    ['client_id', r.client.id],
    ['redirect_uri', r.redirectUri],
    ['scope', r.scopes.length ? r.scopes.join(' ') : null],
    ['state', r.state],
    ['nonce', r.nonce],
    ['code_challenge', r.codeChallenge],
    ['code_challenge_method', 'S256'],
    ['prompt', prompt.length ? prompt.join(' ') : null],
    ['max_age', r.maxAge === null ? null : String(r.maxAge)],
    ['acr_values', r.acr.length ? r.acr.join(' ') : null],
    ['resource', r.resource],
    ['login_hint', r.loginHint],
    ['auth_after', authAfter],
  ];
  return pairs
    .filter((p): p is [string, string] => p[1] !== null)
    .map(([k, v]) => `${k}=${queryValue(v)}`)
    .join('&');
}

/**
 * The URL of this authorization request on the gateway (a path), to come back to after signing
 * in or stepping up; null when it cannot travel as a `return_to` (too long, or a character the
 * return check refuses).
 */
export function authorizeReturnPath(c: Context<AppEnv>, r: AuthorizationRequest, override: Parameters<typeof canonicalQuery>[1] = {}): string | null {
  const config = c.get('config');
  const path = `${config.AUTH_PREFIX}/authorize?${canonicalQuery(r, override)}`;
  return safeReturnTo(path, config) === path ? path : null;
}

/** How long a consent form may be answered. */
export const CONSENT_FORM_TTL_S = 600;

/** An HMAC (a key of the gateway's own) over `parts`, the first of which names what it is for. */
async function requestMac(c: Context<AppEnv>, parts: readonly string[]): Promise<string> {
  const key = await crypto.subtle.importKey('raw', await consentFormKey(c.get('config')), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(parts.join('\n')));
  return base64url.encode(new Uint8Array(mac));
}

const consentMac = (c: Context<AppEnv>, sessionId: string, query: string, issuedAt: number) => requestMac(c, ['consent', sessionId, String(issuedAt), query]);

const macsEqual = (a: string, b: string) => {
  const expected = base64url.decode(a);
  const given = base64url.decode(b);
  return expected.byteLength === given.byteLength && crypto.subtle.timingSafeEqual(expected, given);
};

/**
 * How long a way back through sign-in or step-up may take: after it, the `auth_after` it carries
 * no longer counts and the browser is sent again.
 */
export const AUTH_AFTER_TTL_S = 900;

/** The request without `auth_after` and with `prompt` as it travels through sign-in: what an `auth_after` is bound to. */
const authAfterQuery = (r: AuthorizationRequest) => canonicalQuery(r, { prompt: [...r.prompt].filter((p) => p !== 'login'), authAfter: null });

/**
 * The `auth_after` of a request this server sends to sign in or step up at `now`: the time and
 * an HMAC over it and the request. Only this server can make one, and only for this request, so
 * one written into a URL (`auth_after=0`, or one taken from another request) is not a fresh sign-in.
 */
export async function authAfterToken(c: Context<AppEnv>, r: AuthorizationRequest, now: number): Promise<string> {
  return `${now}.${await requestMac(c, ['auth_after', String(now), authAfterQuery(r)])}`;
}

/**
 * The time the request's `auth_after` names, when this server made it for this request no
 * more than {@link AUTH_AFTER_TTL_S} ago; else null (none, made up, another request's, too old).
 */
export async function authAfterTime(c: Context<AppEnv>, r: AuthorizationRequest, now: number): Promise<number | null> {
  const m = r.authAfter === null ? null : /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(r.authAfter);
  if (!m) return null;
  const issuedAt = Number(m[1]);
  if (issuedAt > now + 60 || now - issuedAt > AUTH_AFTER_TTL_S) return null;
  return macsEqual(await requestMac(c, ['auth_after', m[1]!, authAfterQuery(r)]), m[2]!) ? issuedAt : null;
}

/**
 * The consent form's token: an HMAC (a key of the gateway's own) over the session, the exact
 * request and when the form was made. A form another site makes, or one made for another
 * session or another request, or answered too late, does not carry a valid one.
 */
export async function consentFormToken(c: Context<AppEnv>, sessionId: string, query: string, now: number): Promise<string> {
  return `${now}.${await consentMac(c, sessionId, query, now)}`;
}

/** True if `token` is this session's token for exactly this request, and not too old. */
export async function consentFormTokenValid(c: Context<AppEnv>, token: string, sessionId: string, query: string, now: number): Promise<boolean> {
  const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return false;
  const issuedAt = Number(m[1]);
  if (issuedAt > now + 60 || now - issuedAt > CONSENT_FORM_TTL_S) return false;
  return macsEqual(await consentMac(c, sessionId, query, issuedAt), m[2]!);
}

/** The client's redirect URI with the answer's parameters added (its own query kept), and `iss`. */
export function redirectWith(c: Context<AppEnv>, redirectUri: string, params: Record<string, string | null>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.append(k, v);
  url.searchParams.append('iss', c.get('config').PUBLIC_URL);
  return url.href;
}
