/**
 * The sign-in pipeline: the one way to a session (docs/design.md, "The sign-in pipeline").
 *
 * A route that has checked a first factor (password, mailed code, provider, passkey) hands the
 * user and how they proved who they are to {@link signIn}; a route that has checked a second
 * factor for a pending sign-in hands it to {@link completeSignIn}. Both answer with an
 * {@link SignInOutcome}, a value, never an HTTP response: the route turns it into its reply
 * (routes/sign-in-reply.ts). Here, once for every method: the disabled-account check, the
 * second factor (a user with one, or whose role requires one, gets a pending state, no token),
 * the audit event and its alerts, and the session itself. `startSession` is private to this
 * module, so no other code can start a session.
 *
 * Both functions also refuse (500, logged) a request whose matched route is not in
 * {@link SIGN_IN_ENDPOINTS}: a new sign-in route must be added there, which puts it under the
 * test that drives every entry of that list without the second factor.
 */
import type { Context } from 'hono';
import { matchedRoutes, routePath } from 'hono/route';
import type { AppEnv } from '../env';
import { clientCountry, clientIp, userAgent } from '../http/client';
import { ApiError, invalidToken } from '../http/errors';
import { log } from '../observability/log';
import { isProviderSessionEnded, recordProviderSession } from '../storage/provider-sessions';
import { insertPending, spendPending, type PendingMode, type PendingPurpose, type PendingSignIn } from '../storage/mfa-pending';
import {
  endGrantIn,
  insertAuthorizationCode,
  insertHostCode,
  insertSession,
  rotateGrantRefreshToken,
  spendAuthorizationCode,
  spendHostCode,
  type OAuthGrant,
  type ProviderGroups,
  type Session,
} from '../storage/sessions';
import type { OAuthClient } from '../storage/oauth-clients';
import { revokeSessionIds } from '../storage/revocation';
import { userinfoUrl } from '../config/oauth-endpoints';
import { protectedResources } from '../config/protected-resources';
import { issueGrantToken, serviceSessionId } from '../tokens/grant-token';
import { idTokenKey, issueIdToken, noIdTokenKey } from '../tokens/id-token';
import { isAccountAsRead, type User } from '../storage/users';
import { randomId, sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { pendingUser } from './mfa-pending';
import { hasSecondFactor, mfaRequiredByRole } from './second-factor-status';
import { sessionsOf } from './authenticate';
import { userForTokenClaims } from './directory-reads';
import type { AuthUser } from '../env';
import { accessTokenFor, endSessions, newRefreshToken, REFRESH_REUSE_GRACE_S, type IssuedTokens } from './sessions';

/**
 * The `path` of the proxy's entry: the app's root catch-all (app.ts `app.all('*', proxy(...))`),
 * which serves every method on every path the gateway does not own. It matches only when the
 * running handler is registered as `/*` (hono's spelling of the root `*`) for all methods, is the last route the
 * request matched (middleware registered with `use('*')` comes before it), and the request's
 * path is not under AUTH_PREFIX (the gateway's own endpoints are never proxied).
 */
export const PROXIED = '*proxied*';

export interface SignInEndpoint {
  /** A stable name (tests map each one to a way of driving it). */
  id: string;
  /** `ANY` only for {@link PROXIED}. */
  method: 'GET' | 'POST' | 'ANY';
  /** The route's path under AUTH_PREFIX, as registered (`/callback/:provider`), or {@link PROXIED}. */
  path: string;
  /**
   * `first`: a first factor starts the sign-in ({@link signIn}); `second`: a second factor
   * completes a pending one ({@link completeSignIn}); `host`: a live session of the gateway host
   * is handed to an app host ({@link handOffToHost}, {@link signInOnHost}); `grant`: a live
   * session of the gateway host gives a client an authorization code ({@link issueAuthorizationCode}),
   * or a client's code or refresh token becomes its tokens ({@link exchangeAuthorizationCode},
   * {@link refreshGrant}); `service`: an authenticated client gets a token of its own, no user
   * ({@link issueServiceToken}).
   */
  step: 'first' | 'second' | 'host' | 'grant' | 'service';
}

/**
 * Every endpoint that may sign a user in. The pipeline refuses any other route; the sign-in
 * tests drive every entry and fail on one they do not know.
 */
export const SIGN_IN_ENDPOINTS = [
  { id: 'password_register', method: 'POST', path: '/register', step: 'first' },
  { id: 'password_login', method: 'POST', path: '/login', step: 'first' },
  { id: 'email_verification_confirm', method: 'POST', path: '/email/verify', step: 'first' },
  { id: 'email_code_verify', method: 'POST', path: '/login/email-code/verify', step: 'first' },
  { id: 'oauth_callback', method: 'GET', path: '/callback/:provider', step: 'first' },
  { id: 'passkey_login', method: 'POST', path: '/passkeys/login', step: 'first' },
  { id: 'second_factor_code', method: 'POST', path: '/mfa', step: 'second' },
  { id: 'second_factor_passkey', method: 'POST', path: '/mfa/passkey', step: 'second' },
  { id: 'host_code', method: 'GET', path: '/sso', step: 'host' },
  { id: 'host_code_exchange', method: 'GET', path: '/sso/callback', step: 'host' },
  { id: 'oauth_authorize', method: 'GET', path: '/authorize', step: 'grant' },
  { id: 'oauth_authorize_consent', method: 'POST', path: '/authorize', step: 'grant' },
  { id: 'oauth_token', method: 'POST', path: '/token', step: 'grant' },
  { id: 'oauth_token_client_credentials', method: 'POST', path: '/token', step: 'service' },
  { id: 'service_token_headers', method: 'ANY', path: PROXIED, step: 'service' },
] as const satisfies readonly SignInEndpoint[];

export type SignInEndpointId = (typeof SIGN_IN_ENDPOINTS)[number]['id'];

/** How the client asked: an HTML form (303s), or JSON with tokens in cookies or in the body. */
export type SignInMode = PendingMode;

export interface FirstFactor {
  user: User;
  /** How the first factor was given, as RFC 8176 values (`["pwd"]`, `["github"]`, `["hwk","user","mfa"]`). */
  amr: readonly string[];
  /** The sign-in method the session shows on the account page (`password`, a provider id, `passkey`, `email_code`). */
  provider: string;
  /** How to answer now. */
  mode: SignInMode;
  /** How the pending state's completion answers, when it is not `mode` (a page script that follows a 303 to the second-factor page). */
  pendingMode?: SignInMode;
  /** Where the browser goes after signing in; already checked with safeReturnTo. */
  returnTo: string;
  /** More for the audit event (`via`, `how`, a credential prefix). */
  detail?: Record<string, string | boolean>;
  /** The provider's groups, for the session (auth/provider-groups.ts); none for other methods. */
  groups?: ProviderGroups | null;
  /** The provider's own session (its ID token's `sid`), kept with the session for the provider's back-channel logout. */
  providerSid?: string | null;
  /** The provider's subject who signed in, recorded with `providerSid` for the same logout. */
  providerSubject?: string | null;
}

/** Signed in: the tokens, to be sent the way `mode` says. */
export interface SessionOutcome {
  kind: 'session';
  user: User;
  tokens: IssuedTokens;
  mode: SignInMode;
  returnTo: string;
  /** A pending second-factor state was spent: its cookie goes. */
  spentPending: boolean;
}

/** A second factor is owed: no token, a pending state the client names with `handle`. */
export interface PendingOutcome {
  kind: 'pending';
  user: User;
  handle: string;
  /** `verify`: give a factor the user has; `enrol`: set one up first (MFA_REQUIRED_ROLES). */
  purpose: PendingPurpose;
  /** Seconds the handle stays valid. */
  ttl: number;
  mode: SignInMode;
  returnTo: string;
}

export type SignInOutcome = SessionOutcome | PendingOutcome;

/**
 * The endpoint the request is on, if it is a sign-in endpoint for `step`; otherwise a logged 500.
 * `routePath` is the path the running handler was registered with (AUTH_PREFIX included, also
 * inside app-lazy.ts's mounted apps), so a path parameter cannot pass for another route.
 */
function requireSignInEndpoint(c: Context<AppEnv>, step: SignInEndpoint['step']): SignInEndpointId {
  const matched = routePath(c);
  const prefix = c.get('config').AUTH_PREFIX;
  const endpoint = SIGN_IN_ENDPOINTS.find((e) =>
    e.path === PROXIED ? e.step === step && isProxyRoute(c, matched, prefix) : e.step === step && e.method === c.req.method && `${prefix}${e.path}` === matched,
  );
  if (endpoint) return endpoint.id;
  log.error('sign_in_from_unlisted_route', { method: c.req.method, route: matched, step });
  throw new ApiError('server_error', 'Something went wrong. Try again later.');
}

/** True when the running handler is the proxy's (see {@link PROXIED}). */
function isProxyRoute(c: Context<AppEnv>, matched: string, prefix: string): boolean {
  if (matched !== '/*') return false;
  const routes = matchedRoutes(c);
  const running = routes[c.req.routeIndex];
  if (running?.method !== 'ALL' || c.req.routeIndex !== routes.length - 1) return false;
  const path = c.req.path.toLowerCase();
  return path !== prefix && !path.startsWith(`${prefix}/`);
}

/** What the user still owes after a first factor: nothing (null), a factor, or setting one up. */
async function secondFactorOwed(c: Context<AppEnv>, user: User, amr: readonly string[]): Promise<PendingPurpose | null> {
  // A passkey that verified the user (PIN, biometrics) is two factors in one (`mfa`).
  if (amr.includes('mfa')) return null;
  if (await hasSecondFactor(c.env.DB, user.id, c.get('config'))) return 'verify';
  return mfaRequiredByRole(user, c.get('config')) ? 'enrol' : null;
}

/**
 * The account changed between the first factor's check and storing its outcome (its address
 * was proven by its mailbox owner, who took it over, or it was disabled): nothing is stored.
 */
const accountChanged = () => new ApiError('conflict', 'Your account changed while you were signing in. Sign in again.');

/**
 * Starts a session in the user's object: a refresh token and an access token carrying `amr` and
 * now as `auth_time`. Private: only the two functions below call it.
 *
 * `spendsPending`: the hash of the pending state this session completes, spent in D1 first by a
 * conditional update (refused if already spent); a failure after the spend leaves a spent state
 * and no session: the user signs in again (fail closed, never two sessions from one state).
 *
 * Without one, the session is stored only while the account is as `user` says (storage/users.ts
 * `AccountAsRead`): D1 is checked before the object stores it. With or without one, D1 is checked
 * again after (a claim that landed after the spend deleted nothing the spend still needed); a
 * change seen then ends the new session and refuses. A claim ends every session in the object before and
 * after its D1 batch (auth/mailbox-proof.ts), so a session stored in between is ended by the
 * claim's second pass, and one stored after it is caught by the check after.
 */
async function startSession(
  c: Context<AppEnv>,
  user: User,
  provider: string | null,
  amr: readonly string[],
  groups: ProviderGroups | null,
  providerSid: string | null,
  providerSubject: string | null,
  spendsPending?: string,
): Promise<IssuedTokens> {
  const config = c.get('config');
  const t = now();
  const refresh = await newRefreshToken(user.id);
  const expiresAt = t + Math.min(config.REFRESH_TOKEN_TTL, config.SESSION_MAX_AGE);
  const input = { userId: user.id, refreshHash: refresh.hash, expiresAt, userAgent: userAgent(c), ip: clientIp(c), country: clientCountry(c), provider, amr: [...amr], groups, providerSid };
  if (spendsPending !== undefined) {
    if (!(await spendPending(c.env.DB, spendsPending, t))) throw invalidToken('This sign-in has already been completed or has expired. Sign in again.');
  } else if (!(await isAccountAsRead(c.env.DB, user))) {
    throw accountChanged();
  }
  // A provider's logout token may name only its session: where that session signed in is
  // recorded first, so no Gatehouse session from it exists that the token could not find.
  if (provider !== null && providerSid !== null && providerSubject !== null) {
    await recordProviderSession(c.env.DB, provider, providerSid, providerSubject, user.id, t + config.SESSION_MAX_AGE, t);
  }
  const store = sessionsOf(c, user.id);
  const session = await insertSession(store, input, `ses_${randomId(12)}`, randomId(12), t);
  if (!(await isAccountAsRead(c.env.DB, user))) {
    await endSessions(c, user.id, [session.id]);
    throw accountChanged();
  }
  // A sign-in begun in a provider session its logout token has already ended (a code exchanged
  // after it, or a second factor given after it): checked once the session is stored, so a
  // token that arrives meanwhile either finds the session or is found here.
  if (provider !== null && providerSid !== null && providerSubject !== null && (await isProviderSessionEnded(c.env.DB, provider, providerSid, providerSubject, t))) {
    await endSessions(c, user.id, [session.id]);
    throw new ApiError('forbidden', 'You were signed out at the sign-in provider while this sign-in was under way. Sign in again.');
  }
  const access = await accessTokenFor(c, user, session);
  return { accessToken: access.token, accessTokenId: access.jti, expiresIn: access.expiresIn, refreshToken: refresh.token, sessionExpiresAt: expiresAt, session };
}

/**
 * After a first factor: a session, or (a second factor owed) a pending state and no token.
 *
 * @example
 * const outcome = await signIn(c, { user, amr: ['pwd'], provider: 'password', mode: 'form', returnTo });
 * return signInReply(c, outcome);
 */
export async function signIn(c: Context<AppEnv>, first: FirstFactor): Promise<SignInOutcome> {
  const endpoint = requireSignInEndpoint(c, 'first');
  const { user } = first;
  const method = { method: first.provider, endpoint, ...first.detail };
  if (user.disabledAt !== null) {
    await recordEvent(c, { event: 'login', outcome: 'failure', userId: user.id, detail: { ...method, reason: 'disabled' } });
    throw new ApiError('forbidden', 'This account is disabled.');
  }
  const purpose = await secondFactorOwed(c, user, first.amr);
  if (purpose) {
    const config = c.get('config');
    const handle = randomId(32);
    const t = now();
    const ttl = config.MFA_PENDING_SECONDS;
    const mode = first.pendingMode ?? first.mode;
    const stored = await insertPending(c.env.DB, {
      idHash: await sha256(handle),
      userId: user.id,
      purpose,
      amr: [...first.amr],
      provider: first.provider,
      mode,
      returnTo: first.returnTo,
      groups: first.groups ?? null,
      providerSid: first.providerSid ?? null,
      providerSubject: first.providerSubject ?? null,
      createdAt: t,
      expiresAt: t + ttl,
    }, user);
    if (!stored) throw accountChanged();
    await recordEvent(c, { event: 'mfa_pending', outcome: 'success', userId: user.id, detail: { ...method, purpose, first_factor: first.amr.join(',') } });
    return { kind: 'pending', user, handle, purpose, ttl, mode, returnTo: first.returnTo };
  }
  const tokens = await startSession(c, user, first.provider, first.amr, first.groups ?? null, first.providerSid ?? null, first.providerSubject ?? null);
  await recordEvent(c, { event: 'login', outcome: 'success', userId: user.id, detail: { ...method, amr: first.amr.join(','), sid: tokens.session.id } });
  return { kind: 'session', user, tokens, mode: first.mode, returnTo: first.returnTo, spentPending: false };
}

/**
 * Completes a pending sign-in with a second factor the route has just checked (`factorAmr`:
 * `["otp"]`, `["hwk"]`...): spends the state (once: a replay or a concurrent completion is
 * refused) and starts the session with the first factor's `amr`, `factorAmr` and `mfa`. An
 * `enrol` state completes only once the factor is set up.
 */
export async function completeSignIn(c: Context<AppEnv>, pending: PendingSignIn, factorAmr: readonly string[]): Promise<SessionOutcome> {
  const endpoint = requireSignInEndpoint(c, 'second');
  const user = await pendingUser(c, pending);
  if (!(await hasSecondFactor(c.env.DB, user.id, c.get('config')))) throw new ApiError('forbidden', 'This account must set up a second factor first.');
  const amr = [...new Set([...pending.amr, ...factorAmr, 'mfa'])];
  const tokens = await startSession(c, user, pending.provider, amr, pending.groups, pending.providerSid, pending.providerSubject, pending.idHash);
  await recordEvent(c, { event: 'login', outcome: 'success', userId: user.id, detail: { method: 'second_factor', endpoint, amr: amr.join(','), sid: tokens.session.id } });
  return { kind: 'session', user, tokens, mode: pending.mode, returnTo: pending.returnTo, spentPending: true };
}

/** How long a host code may be exchanged: a redirect's round trip, with room for a slow network. */
export const HOST_CODE_TTL_S = 60;

/**
 * A host code, an authorization code or an app's refresh token: `<user id>.<secret>` (as the
 * gateway's refresh tokens), so its exchange reaches the user's object without D1.
 */
const USER_SECRET = /^(usr_[A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/;

/**
 * The account a presented `<user id>.<secret>` names, and its secret's SHA-256; null for a
 * malformed value or a user id naming no account (anyone can write that routing part: it must
 * not reach, and so create, an object).
 */
async function presentedSecret(c: Context<AppEnv>, value: string): Promise<{ user: User; hash: string } | null> {
  const parts = USER_SECRET.exec(value);
  if (!parts) return null;
  const user = await userForTokenClaims(c, parts[1]!);
  return user ? { user, hash: await sha256(parts[2]!) } : null;
}

/** Where a host code leads: the app host's origin and the path (with query) to go back to there. */
export interface HostTarget {
  origin: string;
  returnPath: string;
  /** The state the browser holds on that host (the `state` it came to `/sso` with). */
  state: string;
}

/**
 * Hands the live gateway session of `auth` (its access cookie, verified) to an app host: a
 * one-time code, bound to the session, the host's origin and the return path, valid for
 * {@link HOST_CODE_TTL_S} seconds. Only the secret's hash is stored, in the user's object and
 * only while the session is live there. Null when the session has ended: no code.
 */
export async function handOffToHost(c: Context<AppEnv>, auth: AuthUser, target: HostTarget): Promise<string | null> {
  const endpoint = requireSignInEndpoint(c, 'host');
  const stateHash = await sha256(target.state);
  return mintSessionCode(c, auth, (hash, t) =>
    insertHostCode(sessionsOf(c, auth.id), {
      hash,
      session_id: auth.sessionId,
      origin: target.origin,
      return_path: target.returnPath,
      state_hash: stateHash,
      created_at: t,
      expires_at: t + HOST_CODE_TTL_S,
    }), { event: 'host_code_issued', detail: { endpoint, sid: auth.sessionId, host: target.origin } });
}

/**
 * A one-time code for the live session of `auth`: `<user id>.<secret>` (the user id routes the
 * exchange to the user's object without D1), of which `store` keeps only the secret's SHA-256;
 * the audit event once stored. Null when `store` refused it (the session has ended).
 */
async function mintSessionCode(
  c: Context<AppEnv>,
  auth: AuthUser,
  store: (hash: string, t: number) => Promise<boolean>,
  audit: { event: string; detail: Record<string, string> },
): Promise<string | null> {
  const secret = randomId(32);
  if (!(await store(await sha256(secret), now()))) return null;
  await recordEvent(c, { event: audit.event, outcome: 'success', userId: auth.id, detail: audit.detail });
  return `${auth.id}.${secret}`;
}

/** An app host signed in: an access token of the same session, for that host alone. */
export interface HostSignIn {
  user: User;
  accessToken: string;
  /** Seconds the host's cookie may live: until the session's end. */
  cookieMaxAge: number;
  returnPath: string;
}

/**
 * Exchanges a host code on the app host at `origin`: once, on that origin, from the browser it
 * was made for (`state`, which that browser holds on the host), before its expiry, while its
 * session is live and the account enabled. The access token carries the session's
 * `sid` (every way of ending the session ends it here too) and the host's origin as its
 * audience (auth/authenticate.ts accepts it on that origin alone). A code presented again is a
 * security event (it was seen by someone else, or the browser was made to replay it); one
 * presented on another origin or by another browser (a security event too), or too late, is
 * spent and refused.
 */
export async function signInOnHost(c: Context<AppEnv>, code: string, origin: string, state: string): Promise<HostSignIn> {
  const endpoint = requireSignInEndpoint(c, 'host');
  const refused = invalidToken('This sign-in code is invalid, used, expired or for another site. Open the page again.');
  const presented = await presentedSecret(c, code);
  if (!presented) throw refused;
  const { user } = presented;
  const userId = user.id;
  const config = c.get('config');
  const t = now();
  const outcome = await spendHostCode(sessionsOf(c, userId), presented.hash, origin, await sha256(state), t);
  if (outcome.kind === 'unknown') throw refused;
  if (outcome.kind !== 'spent') {
    const replay = outcome.kind === 'replayed';
    // No state at all is most likely its cookie running out during a long sign-in; another
    // browser's state is someone pushing their code to this browser.
    const reason = outcome.kind === 'wrong_browser' && state === '' ? 'no_state' : outcome.kind;
    await recordEvent(c, {
      event: replay ? 'host_code_replayed' : 'host_code_refused',
      outcome: replay || reason === 'wrong_host' || reason === 'wrong_browser' ? 'security' : 'failure',
      userId,
      detail: { endpoint, sid: outcome.sessionId, host: origin, reason },
    });
    throw refused;
  }
  const { session } = outcome;
  if (user.disabledAt !== null || session.createdAt + config.SESSION_MAX_AGE <= t) throw refused;
  const access = await accessTokenFor(c, user, session, origin);
  await recordEvent(c, { event: 'host_sign_in', outcome: 'success', userId, detail: { endpoint, sid: session.id, host: origin } });
  return { user, accessToken: access.token, cookieMaxAge: Math.max(0, session.expiresAt - t), returnPath: outcome.returnPath };
}

/** How long an authorization code may be exchanged (RFC 6749 §4.1.2: short; a redirect's round trip). */
export const AUTHORIZATION_CODE_TTL_S = 60;

/** What an authorization code is for: the validated authorization request (auth/oauth-authorize.ts). */
export interface AuthorizationCodeRequest {
  clientId: string;
  redirectUri: string;
  /** The granted scopes, space-separated. */
  scope: string;
  nonce: string | null;
  /** The PKCE S256 challenge the token request's verifier must match. */
  codeChallenge: string;
  /** The RFC 8707 resource the tokens will be for, or null. */
  resource: string | null;
}

/**
 * Gives a client a one-time authorization code for the live gateway session of `auth` (its
 * access cookie, verified against the session's object): `<user id>.<secret>`, as host codes,
 * valid {@link AUTHORIZATION_CODE_TTL_S} seconds. Only the secret's hash is stored, in the
 * user's object, with the session's `auth_time` and `amr`, and only while the session is live
 * there. Null when the session has ended: no code.
 */
export async function issueAuthorizationCode(c: Context<AppEnv>, auth: AuthUser, request: AuthorizationCodeRequest): Promise<string | null> {
  const endpoint = requireSignInEndpoint(c, 'grant');
  return mintSessionCode(c, auth, (hash, t) =>
    insertAuthorizationCode(sessionsOf(c, auth.id), {
      hash,
      session_id: auth.sessionId,
      client_id: request.clientId,
      redirect_uri: request.redirectUri,
      scope: request.scope,
      nonce: request.nonce,
      code_challenge: request.codeChallenge,
      resource: request.resource,
      created_at: t,
      expires_at: t + AUTHORIZATION_CODE_TTL_S,
    }), {
    event: 'oauth_code_issued',
    detail: { endpoint, sid: auth.sessionId, client_id: request.clientId, scope: request.scope, ...(request.resource ? { resource: request.resource } : {}) },
  });
}

/** What the token endpoint hands a client (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3). */
export interface GrantTokens {
  accessToken: string;
  expiresIn: number;
  scope: string;
  refreshToken?: string;
  idToken?: string;
}

/** An authorization code's exchange as the token endpoint read it (RFC 6749 §4.1.3, RFC 7636 §4.5). */
export interface CodeExchange {
  code: string;
  redirectUri: string;
  codeVerifier: string;
  /** An RFC 8707 `resource` sent with the exchange: it must be the one the code was issued for. */
  resource?: string;
}

const scopes = (scope: string) => scope.split(' ').filter(Boolean);

/**
 * Mints a grant's tokens: the access token for the grant's resource (or the userinfo endpoint),
 * never outliving the session or the grant, carrying the session's `sid` (every way the session
 * ends refuses it), the grant's `gid` and the client's epoch; an ID token when the scope has
 * `openid`. Private: only the exchange and the refresh below call it.
 */
async function mintGrantTokens(
  c: Context<AppEnv>,
  client: OAuthClient,
  user: User,
  session: Session,
  grant: OAuthGrant,
  sign: { authTime: number; amr: readonly string[]; nonce: string | null },
  refreshToken: string | undefined,
  /** Whether an ID token comes along (when the scope has `openid`); a refresh without an ES256 key gives none. */
  withIdToken = true,
): Promise<GrantTokens> {
  const config = c.get('config');
  const keyring = c.get('keyring');
  const access = await issueGrantToken(keyring, {
    issuer: config.PUBLIC_URL,
    audience: grant.resource ?? userinfoUrl(config),
    subject: user.id,
    sessionId: session.id,
    clientId: client.id,
    clientEpoch: client.tokenEpoch,
    grantId: grant.id,
    scope: grant.scope,
    ttlSeconds: config.ACCESS_TOKEN_TTL,
    notAfter: Math.min(session.createdAt + config.SESSION_MAX_AGE, session.expiresAt, grant.expiresAt),
    authTime: sign.authTime,
    amr: sign.amr,
  });
  const granted = scopes(grant.scope);
  const idToken = withIdToken && granted.includes('openid')
    ? await issueIdToken(keyring, {
        issuer: config.PUBLIC_URL,
        subject: user.id,
        clientId: client.id,
        sessionId: session.id,
        authTime: sign.authTime,
        amr: sign.amr,
        nonce: sign.nonce,
        accessToken: access.token,
        ttlSeconds: config.ACCESS_TOKEN_TTL,
        ...(granted.includes('email') ? { email: { address: user.email, verified: user.emailVerified } } : {}),
      })
    : undefined;
  return { accessToken: access.token, expiresIn: access.expiresIn, scope: grant.scope, ...(refreshToken ? { refreshToken } : {}), ...(idToken ? { idToken } : {}) };
}


/** Ends a grant everywhere: in the user's object, then its tokens in KV (their `gid`). */
async function endGrant(c: Context<AppEnv>, userId: string, grantId: string, clientId: string): Promise<void> {
  await endGrantIn(sessionsOf(c, userId), grantId, clientId, now());
  await revokeSessionIds(c.env.REVOKED, [grantId], c.get('config').ACCESS_TOKEN_TTL);
}

/**
 * Exchanges an authorization code (RFC 6749 §4.1.3) for `client`, which the token endpoint has
 * authenticated: once (the object spends it in one transaction whatever the outcome), by the
 * client it was issued to, with the exact `redirect_uri` and the PKCE verifier of its
 * challenge, before its expiry, while its session is live and the account enabled. The grant
 * is created with the code's spend. A code presented again ends the grant its first exchange
 * created, refresh token and access tokens (RFC 6749 §4.1.2), a security event.
 */
export async function exchangeAuthorizationCode(c: Context<AppEnv>, client: OAuthClient, request: CodeExchange): Promise<GrantTokens> {
  const endpoint = requireSignInEndpoint(c, 'grant');
  const refused = new ApiError('invalid_grant', 'The authorization code is invalid, used, expired, or was issued to another client or redirect URI.');
  const presented = await presentedSecret(c, request.code);
  if (!presented) throw refused;
  const { user } = presented;
  const userId = user.id;
  const config = c.get('config');
  const t = now();
  const refresh = client.grantTypes.includes('refresh_token') ? await newRefreshToken(userId) : null;
  const grantId = `grt_${randomId(16)}`;
  const outcome = await spendAuthorizationCode(sessionsOf(c, userId), {
    hash: presented.hash,
    clientId: client.id,
    clientEpoch: client.tokenEpoch,
    redirectUri: request.redirectUri,
    verifierChallenge: await sha256(request.codeVerifier),
    now: t,
    grantId,
    refreshHash: refresh?.hash ?? null,
    grantExpiresAt: t + config.REFRESH_TOKEN_TTL,
    maxAge: config.SESSION_MAX_AGE,
  });
  if (outcome.kind === 'unknown') throw refused;
  if (outcome.kind === 'replayed') {
    if (outcome.grantId !== null) await revokeSessionIds(c.env.REVOKED, [outcome.grantId], config.ACCESS_TOKEN_TTL);
    await recordEvent(c, {
      event: 'authorization_code_replayed',
      outcome: 'security',
      userId,
      detail: { endpoint, client_id: client.id, sid: outcome.sessionId, gid: outcome.grantId ?? '', message: 'An authorization code was presented again; the grant it led to was ended.' },
    });
    throw refused;
  }
  if (outcome.kind === 'refused') {
    await recordEvent(c, {
      event: 'authorization_code_refused',
      outcome: outcome.reason === 'wrong_client' || outcome.reason === 'wrong_verifier' ? 'security' : 'failure',
      userId,
      detail: { endpoint, client_id: client.id, sid: outcome.sessionId, reason: outcome.reason },
    });
    throw refused;
  }
  const { code, session, grant } = outcome;
  if (user.disabledAt !== null) {
    await endGrant(c, userId, grant.id, client.id);
    throw refused;
  }
  if (request.resource !== undefined && request.resource !== (code.resource ?? undefined)) {
    await endGrant(c, userId, grant.id, client.id);
    throw new ApiError('invalid_target', 'The resource is not the one the authorization code was issued for.');
  }
  if (scopes(grant.scope).includes('openid') && !idTokenKey(c.get('keyring'))) {
    await endGrant(c, userId, grant.id, client.id);
    throw noIdTokenKey();
  }
  const amr = parseAmr(code.amr);
  const tokens = await mintGrantTokens(c, client, user, session, grant, { authTime: code.auth_time, amr, nonce: code.nonce }, grant.hasRefreshToken ? refresh?.token : undefined);
  await recordEvent(c, { event: 'oauth_tokens_issued', outcome: 'success', userId, detail: { endpoint, grant_type: 'authorization_code', client_id: client.id, sid: session.id, gid: grant.id, scope: grant.scope } });
  return tokens;
}

function parseAmr(text: string): string[] {
  try {
    const list: unknown = JSON.parse(text);
    return Array.isArray(list) ? list.filter((m): m is string => typeof m === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * The refresh-token grant (RFC 6749 §6) for `client`: rotates the grant's refresh token in the
 * user's object (one transaction: of concurrent refreshes one wins; a rotated token presented
 * after {@link REFRESH_REUSE_GRACE_S} ends the grant, a security event). Only the grant's
 * client, only while its session is live and the account enabled; `scope` may only narrow
 * (the narrower scope is the grant's from then on); a `resource` (RFC 8707) must be the
 * grant's, else `invalid_target` and nothing rotates. The client's registration as it stands
 * bounds it: a scope taken from the client since is dropped from the grant, a resource it may
 * no longer have (or a new token epoch: it was disabled) ends the grant. The access token keeps the session's
 * `sid`, `auth_time` and `amr` and the grant's `gid`.
 */
export async function refreshGrant(c: Context<AppEnv>, client: OAuthClient, request: { refreshToken: string; scope?: string; resource?: string }): Promise<GrantTokens> {
  const endpoint = requireSignInEndpoint(c, 'grant');
  const refused = new ApiError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
  const presented = await presentedSecret(c, request.refreshToken);
  if (!presented) throw refused;
  const { user } = presented;
  const userId = user.id;
  const config = c.get('config');
  const store = sessionsOf(c, userId);
  const next = await newRefreshToken(userId);
  const t = now();
  const outcome = await rotateGrantRefreshToken(store, {
    hash: presented.hash,
    newHash: next.hash,
    clientId: client.id,
    clientEpoch: client.tokenEpoch,
    now: t,
    refreshTtl: config.REFRESH_TOKEN_TTL,
    maxAge: config.SESSION_MAX_AGE,
    grace: REFRESH_REUSE_GRACE_S,
    scope: request.scope === undefined ? null : scopes(request.scope),
    resource: request.resource ?? null,
    clientScopes: client.allowedScopes,
    clientResources: [...protectedResources(config.ROUTES, config.PUBLIC_URL).map((r) => r.url), ...client.allowedAudiences],
  });
  if (outcome.kind === 'wider_scope') throw new ApiError('invalid_scope', 'A refresh may only narrow the scope the user granted.');
  if (outcome.kind === 'other_resource') throw new ApiError('invalid_target', 'The resource is not the one this grant is for.');
  if (outcome.kind === 'invalid') throw refused;
  if (outcome.kind === 'conflict') throw new ApiError('invalid_grant', 'This refresh token was just used by another request, which received the new tokens.');
  if (outcome.kind === 'wrong_client') {
    await recordEvent(c, { event: 'oauth_refresh_refused', outcome: 'security', userId, detail: { endpoint, client_id: client.id, reason: 'wrong_client' } });
    throw refused;
  }
  if (outcome.kind === 'reused') {
    await revokeSessionIds(c.env.REVOKED, [outcome.grantId], config.ACCESS_TOKEN_TTL);
    await recordEvent(c, {
      event: 'oauth_refresh_token_reuse',
      outcome: 'security',
      userId,
      detail: { endpoint, client_id: client.id, sid: outcome.sessionId, gid: outcome.grantId, message: 'A rotated refresh token was presented again; the grant was ended.' },
    });
    throw refused;
  }
  const { grant, session } = outcome;
  if (user.disabledAt !== null) {
    await endGrant(c, userId, grant.id, client.id);
    throw refused;
  }
  // The refresh has rotated the token already: without an ES256 key (SIGNING_KEYS changed since
  // the code's exchange) the answer comes without an ID token, which a refresh may omit
  // (OpenID Connect Core §12.2), rather than losing the client its new refresh token.
  const withIdToken = idTokenKey(c.get('keyring')) !== null;
  const tokens = await mintGrantTokens(c, client, user, session, grant, { authTime: session.authTime, amr: session.amr, nonce: null }, next.token, withIdToken);
  await recordEvent(c, { event: 'oauth_tokens_issued', outcome: 'success', userId, detail: { endpoint, grant_type: 'refresh_token', client_id: client.id, sid: session.id, gid: grant.id, scope: grant.scope } });
  return tokens;
}

/** A service's access token (client credentials): for one audience, no user, no refresh token. */
export interface ServiceToken {
  token: string;
  jti: string;
  expiresAt: number;
  expiresIn: number;
  scope: string;
  audience: string;
}

/**
 * Mints a service's access token (RFC 6749 §4.4) for a client its caller has authenticated
 * (auth/oauth-clients.ts `authenticateClient`) and checked: `sub` is the client, `svc` true,
 * `sid` the client's service session of its current token epoch (disabling the client or moving
 * the epoch revokes it), `cep` the epoch, no grant id. The audience and scope are the caller's
 * to have checked against the client's allowed ones; the client's registration is checked here
 * again (enabled, confidential, allowed the grant and the audience), so that no route can mint
 * past it. Lifetime: ACCESS_TOKEN_TTL, the time a revocation is kept in KV
 * (storage/revocation.ts), so a revoked token cannot outlive its revocation entry.
 */
export async function issueServiceToken(c: Context<AppEnv>, client: OAuthClient, grant: { audience: string; scope: string }): Promise<ServiceToken> {
  const endpoint = requireSignInEndpoint(c, 'service');
  const allowed =
    client.disabledAt === null &&
    client.kind === 'confidential' &&
    client.authMethod !== 'none' &&
    client.grantTypes.includes('client_credentials') &&
    client.allowedAudiences.includes(grant.audience);
  if (!allowed) {
    log.error('service_token_refused', { client_id: client.id, endpoint });
    throw new ApiError('unauthorized_client', 'This client may not get a token for this audience.');
  }
  const config = c.get('config');
  const issued = await issueGrantToken(c.get('keyring'), {
    issuer: config.PUBLIC_URL,
    audience: grant.audience,
    subject: client.id,
    sessionId: serviceSessionId(client.id, client.tokenEpoch),
    clientId: client.id,
    clientEpoch: client.tokenEpoch,
    scope: grant.scope,
    ttlSeconds: config.ACCESS_TOKEN_TTL,
    service: true,
  });
  await recordEvent(c, {
    event: 'service_token_issued',
    outcome: 'success',
    userId: null,
    detail: { endpoint, client_id: client.id, aud: grant.audience, scope: grant.scope, jti: issued.jti },
  });
  return { ...issued, scope: grant.scope, audience: grant.audience };
}
