/**
 * Decides who a request to a route is, and whether it may pass: the route's `auth` mode, the
 * presented token (bearer or cookie, fully verified including revocation), cross-site checks
 * for cookie-authenticated unsafe methods and WebSocket handshakes, the route's policy (its
 * rules, then step-up, then its external decision). Shared by the proxy and by forward-auth
 * (`/auth/verify`). A refusal by policy is a bare 403 `forbidden`: which rule refused goes to
 * the request log (`policy_rule`), never to the requester.
 *
 * A service (README "Machines") comes with a bearer token of its own (`svc`), or at the proxy
 * with its client id and secret in two headers (proxy/service-caller.ts, loaded on first use):
 * the request's one extra cost for everyone else is the lookup of the client-id header, and a
 * bearer token is looked at as a possible service's only after it failed as a session's.
 */
import type { Context } from 'hono';
import type { AppEnv, AuthUser, ServiceCaller } from '../env';
import { wantsHtml } from '../http/client';
import { ApiError, insufficientUserAuthentication, invalidToken } from '../http/errors';
import { authenticate, presentedToken } from '../auth/authenticate';
import { crossSiteRefused, isSafeMethod, requestSite } from '../auth/cross-site';
import type { CompiledRoute } from './route-table';
import type { Policy } from '../config/policy';
import { encodePath, type NormalisedPath } from './normalise-path';
import { hasPolicy, routePolicies } from '../config/route-policies';
import { stepUpNeed } from './step-up';
import { nowSeconds } from '../util/time';
import type { Principal } from './policy';

/** Headers by which many frameworks let a POST (or even a GET) act as another method. */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/**
 * True if the request may change something at the origin: an unsafe method, a method-override
 * header naming one (an origin that honours it would treat a cross-site GET as a DELETE), or a
 * WebSocket handshake, which is a GET but what follows it is not read-only (cross-site
 * WebSocket hijacking).
 */
function mayWrite(c: Context<AppEnv>, method: string): boolean {
  if (!isSafeMethod(method)) return true;
  const overridden = METHOD_OVERRIDES.some((name) => {
    const value = c.req.header(name);
    return value !== undefined && !isSafeMethod(value.trim());
  });
  if (overridden) return true;
  return (c.req.header('upgrade') ?? '').toLowerCase() === 'websocket';
}

export type GateResult =
  /** `service`: a service passed (then `user` is null; `via` is null when it came with the two headers). */
  | { pass: true; user: AuthUser | null; via: 'cookie' | 'bearer' | null; service?: ServiceCaller }
  | { pass: false; redirect: string; status?: 302 | 303 };

export interface GateOptions {
  /** The URL to come back to after signing in; browser navigations are redirected when set. */
  returnTo?: string;
  /** Refuse cookie-authenticated unsafe methods from another site (proxied requests). */
  refuseCrossSite?: boolean;
  /** The method of the request being authorised, when it is not this one (forward-auth). */
  method?: string;
  /** Origins besides `PUBLIC_URL` that the request may come from (forward-auth: the app's own). */
  trustedOrigins?: readonly string[];
  /** What the route's policy may ask of the request; null where nothing trustworthy is known. */
  request?: PolicyRequest;
  /**
   * An app host (README "Hosts"): where a browser navigation goes instead of this host's sign-in
   * and refresh (the gateway's `/sso`) and step-up (the gateway's, then `/sso` again). Absolute URLs.
   */
  viaGateway?: { signIn: string; stepUp: string };
  /** Take a service's client id and secret from the two headers (the built-in proxy only). */
  serviceHeaders?: boolean;
}

export interface PolicyRequest {
  method: string | null;
  /** The request's `_method` query parameters (a method override many frameworks honour). */
  methodParams: readonly string[];
  /** The normalised path the route matched. */
  path: NormalisedPath | null;
  host: string | null;
  ip: string | null;
  country: string | null;
}

const NOT_ALLOWED = 'Your account is not allowed on this route.';

/**
 * The evaluator and the external decision are loaded on first use (dynamic `import()`), so that
 * start-up evaluates none of the policy code; later requests reuse the loaded module.
 */
let evaluator: Promise<typeof import('./policy')> | undefined;
let external: Promise<typeof import('./external-decision')> | undefined;
/** Grant tokens at protected resources (and what they read), loaded on a resource route's first request. */
let resources: Promise<typeof import('./resource-tokens')> | undefined;
let services: Promise<typeof import('./service-caller')> | undefined;

/** The header naming a service's client id (proxy/service-caller.ts `CLIENT_ID_HEADER`). */
const CLIENT_ID_HEADER = 'x-gatehouse-client-id';
/** The service-token pair's names (proxy/service-caller.ts), as `Headers` lists them, with `_` read as `-`. */
const SERVICE_PAIR: ReadonlySet<string> = new Set([CLIENT_ID_HEADER, 'x-gatehouse-client-secret']);

/**
 * True if the request carries either header of the service-token pair, in any spelling an origin
 * may read as one (case, `_` for `-`). Where the gateway cannot drop them (forward-auth: the
 * proxy in front passes the request on as it came), any answer but a refusal would send a
 * client's secret to the origin, on a public route as on any other.
 */
function carriesServicePair(c: Context<AppEnv>): boolean {
  for (const name of c.req.raw.headers.keys()) if (name.startsWith('x') && SERVICE_PAIR.has(name.replaceAll('_', '-'))) return true;
  return false;
}

/**
 * The first of `named` (override headers' values, `_method` query parameters) that names another
 * method than `method`, or undefined: then the policy sees the method as unknown, since an origin
 * that honours the override acts on that method, not on the request line's. Shared with the
 * policy explainer (routes/policy-explain.ts), so both read a URL's `_method` alike.
 */
export function methodOverride(method: string, named: readonly (string | undefined)[]): string | undefined {
  const upper = method.toUpperCase();
  return named.find((value) => value !== undefined && value.trim().toUpperCase() !== upper);
}

/** The method the policy sees: unknown (null) when a method-override header or `_method` query parameter names another one. */
function policyMethod(c: Context<AppEnv>, request: PolicyRequest | undefined): string | null {
  if (!request || request.method === null) return null;
  if (methodOverride(request.method, [...METHOD_OVERRIDES.map((name) => c.req.header(name)), ...request.methodParams]) !== undefined) return null;
  return request.method;
}

/** The route's compiled policy, or null; throws `forbidden` if its rules refuse the request. */
async function checkRules(c: Context<AppEnv>, route: CompiledRoute, user: Principal, request: PolicyRequest | undefined, now: number): Promise<Policy | null> {
  if (!hasPolicy(route.config)) return null;
  const [policies, { decide }] = await Promise.all([routePolicies(c.get('config')), (evaluator ??= import('./policy'))]);
  const policy = policies?.get(route.config);
  // The configure middleware compiled every route's policy before the gate runs: a route with
  // rules and no compiled policy would be a bug, refused rather than let through.
  if (!policy) throw new ApiError('server_error', 'The route policy is not available.');
  const verdict = decide(policy, user, {
    method: policyMethod(c, request),
    segments: request?.path ? request.path.segments.slice(route.prefix.length) : null,
    ip: request?.ip ?? null,
    country: request?.country ?? null,
    now,
  });
  c.set('policyRule', verdict.rule);
  if (!verdict.allowed) throw new ApiError('forbidden', NOT_ALLOWED);
  return policy;
}

/** Asks the route's external decision service, if it names one; throws `forbidden` unless it allows. */
async function checkExternal(c: Context<AppEnv>, route: CompiledRoute, policy: Policy | null, user: Principal, request: PolicyRequest | undefined): Promise<void> {
  if (!policy?.external) return;
  const { externalDecision } = await (external ??= import('./external-decision'));
  const answer = await externalDecision(c.env, policy.external, route.config.path, user, {
    method: policyMethod(c, request) ?? '',
    host: request?.host ?? null,
    path: request?.path ? encodePath(request.path.segments, request.path.trailingSlash) : '',
    ip: request?.ip ?? null,
    country: request?.country ?? null,
  });
  if (answer.allowed) return;
  c.set('policyRule', answer.failed ? 'external failed' : 'external');
  c.set('policyReason', answer.why);
  throw new ApiError('forbidden', NOT_ALLOWED);
}

/** A service's way through: verified and admitted (service-caller.ts), then the route's rules and external decision. */
async function serviceGate(c: Context<AppEnv>, route: CompiledRoute, options: GateOptions, credential: { clientId: string } | { token: string }): Promise<GateResult> {
  const found = await (services ??= import('./service-caller'));
  let service: ServiceCaller;
  if ('token' in credential) {
    service = await found.serviceFromToken(c, route, credential.token);
  } else {
    if (!options.serviceHeaders) throw found.headersRefusedHere();
    service = await found.serviceFromHeaders(c, route, credential.clientId);
  }
  const policy = await checkRules(c, route, service, options.request, nowSeconds());
  await checkExternal(c, route, policy, service, options.request);
  return { pass: true, user: null, via: 'token' in credential ? 'bearer' : null, service };
}

export async function gate(c: Context<AppEnv>, route: CompiledRoute, options: GateOptions = {}): Promise<GateResult> {
  if (!options.serviceHeaders && carriesServicePair(c)) throw (await (services ??= import('./service-caller'))).headersRefusedHere();
  const mode = route.config.auth;
  if (mode === 'public') return { pass: true, user: null, via: null };
  // A protected resource takes only grant tokens for it, and never sends anyone to sign in.
  if (route.config.resource !== undefined) {
    const { resourceGate } = await (resources ??= import('./resource-tokens'));
    return resourceGate(c, route, (user) => admit(c, route, user, 'bearer', { request: options.request }));
  }
  // Anywhere else, a script's two service-token headers stand for a bearer token.
  const clientId = c.req.header(CLIENT_ID_HEADER);
  if (clientId !== undefined) return serviceGate(c, route, options, { clientId });
  const config = c.get('config');
  const navigation = options.returnTo !== undefined && wantsHtml(c);
  const to = (endpoint: 'login' | 'refresh') =>
    options.viaGateway?.signIn ?? `${config.AUTH_PREFIX}/${endpoint}?return_to=${encodeURIComponent(options.returnTo ?? '/')}`;

  const presented = presentedToken(c);
  if (!presented) {
    if (mode === 'optional') return { pass: true, user: null, via: null };
    if (navigation) return { pass: false, redirect: to('login') };
    throw invalidToken('Sign in first: no access token was sent.');
  }
  if (options.refuseCrossSite && presented.via === 'cookie' && mayWrite(c, options.method ?? c.req.method)) {
    // Only a proven same-origin request passes: one that names no site is refused too.
    const site = requestSite(c, [config.PUBLIC_URL, ...(options.trustedOrigins ?? [])]);
    if (site !== 'same-origin') throw crossSiteRefused(site);
  }
  let user: AuthUser;
  try {
    user = await authenticate(c, presented.token, route.config.revocation === 'immediate');
  } catch (e) {
    // A stale session cookie (expired, revoked) is not an attack: a browser is sent to refresh
    // it (the refresh cookie is scoped to the auth prefix, so only an /auth endpoint can), and an
    // optional route simply treats it as anonymous. A bad bearer token is always refused.
    const refused = e instanceof ApiError && e.code === 'invalid_token';
    if (refused && presented.via === 'bearer' && (await (services ??= import('./service-caller'))).claimsService(presented.token)) {
      return serviceGate(c, route, options, { token: presented.token });
    }
    const stale = refused && presented.via === 'cookie';
    if (!stale) throw e;
    if (mode === 'optional') return { pass: true, user: null, via: null };
    if (navigation) return { pass: false, redirect: to('refresh') };
    throw e;
  }
  return admit(c, route, user, presented.via, options);
}

/** A verified caller through the route's policy, step-up and external decision. */
async function admit(c: Context<AppEnv>, route: CompiledRoute, user: AuthUser, via: 'cookie' | 'bearer', options: GateOptions): Promise<GateResult> {
  const config = c.get('config');
  const navigation = options.returnTo !== undefined && wantsHtml(c);
  c.set('user', user);
  c.set('authVia', via);
  const now = nowSeconds();
  const policy = await checkRules(c, route, user, options.request, now);
  const need = stepUpNeed(route.config, user, now);
  if (need) {
    const stepUp = `${config.AUTH_PREFIX}/step-up${options.returnTo === undefined ? '' : `?return_to=${encodeURIComponent(options.returnTo)}`}`;
    // A browser is sent to sign in again more strongly and comes back; an API client is told what would do.
    if (navigation) return { pass: false, redirect: options.viaGateway?.stepUp ?? stepUp, status: 303 };
    throw insufficientUserAuthentication(need, `${config.PUBLIC_URL}${stepUp}`);
  }
  await checkExternal(c, route, policy, user, options.request);
  return { pass: true, user, via };
}
