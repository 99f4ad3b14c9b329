/**
 * `@gatehouse/verify`, the package origins install: verifies the `X-Auth-Assertion` header
 * Gatehouse adds to every request it forwards, against the gateway's published keys, and the
 * logout notices it posts to a route's `logout_notify`. Runs anywhere WebCrypto and `fetch` exist
 * (Node >= 20, Workers, Deno, Bun). It imports nothing of the gateway: only `jose` and `valibot`.
 * The Hono middleware is `@gatehouse/verify/hono` (./hono.ts).
 *
 * @example
 * import { verifyGatehouseAssertion } from '@gatehouse/verify';
 * const who = await verifyGatehouseAssertion(request, {
 *   jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
 *   audience: 'https://app.internal.example.com',
 * });
 * who.email; who.roles;
 *
 * A service (a client with a token of its own, README "Machines") gets an assertion without a
 * person (`svc: true`, `sub` = `client_id`): refused here unless the origin opts in with
 * `acceptServices: true`, so code that expects a person never takes a machine for one.
 *
 * @example
 * const who = await verifyGatehouseAssertion(request, { jwksUrl, audience, acceptServices: true });
 * if (who.kind === 'service') who.clientId; else who.email;
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import * as v from 'valibot';

export interface VerifyOptions {
  /** The gateway's `/.well-known/jwks.json`: https (plain http only to localhost, 127.0.0.1 or [::1]). */
  jwksUrl: string | URL;
  /** This origin's audience: the route's `audience`, by default the origin's own URL origin. Required: its absence is a `TypeError`, not "any audience". */
  audience: string;
  /** The gateway's `PUBLIC_URL`; by default the origin of `jwksUrl`. */
  issuer?: string;
  /** Seconds of clock skew tolerated (default 30). */
  clockTolerance?: number;
  /** Accept a service's assertion too (then the answer may be a {@link GatehouseService}); by default it is refused. */
  acceptServices?: boolean;
}

export interface GatehouseIdentity {
  kind: 'person';
  userId: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  /** The identity provider's groups; empty from older gateways, whose assertions did not carry them. */
  groups: string[];
  sessionId: string;
  /** How the user signed in (RFC 8176 values, e.g. `["pwd","otp","mfa"]`); empty from older gateways, whose assertions did not carry it. */
  amr: string[];
  /** When the user last authenticated (Unix seconds), or null from older gateways, whose assertions did not carry it. */
  authTime: number | null;
  /** The OAuth client acting for the user (at a route marked as an MCP server), else null. */
  clientId: string | null;
  claims: JWTPayload;
}

/** A service calling through Gatehouse: a client, no person. */
export interface GatehouseService {
  kind: 'service';
  clientId: string;
  /** The scopes of the service's token. */
  scope: string[];
  sessionId: string;
  claims: JWTPayload;
}

export class GatehouseAssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatehouseAssertionError';
  }
}

export const ASSERTION_HEADER = 'x-auth-assertion';
const MAX_LIFETIME_S = 60;

/**
 * The identity claims, beyond what jose checks (signature, `iss`, `aud`, `typ`, lifetime,
 * presence of `sub`). Roles that are not strings are dropped rather than refused.
 */
const identityClaimsSchema = v.object({
  sub: v.string(),
  sid: v.string(),
  email: v.string(),
  email_verified: v.boolean(),
  roles: v.pipe(
    v.array(v.unknown()),
    v.transform((roles) => roles.filter((r): r is string => typeof r === 'string')),
  ),
  groups: v.optional(
    v.pipe(
      v.array(v.unknown()),
      v.transform((groups) => groups.filter((g): g is string => typeof g === 'string')),
    ),
    [],
  ),
  amr: v.optional(v.array(v.string()), []),
  auth_time: v.optional(v.pipe(v.number(), v.integer())),
  client_id: v.optional(v.string()),
});

const serviceClaimsSchema = v.object({
  sub: v.string(),
  sid: v.string(),
  client_id: v.string(),
  svc: v.literal(true),
  scope: v.optional(v.string(), ''),
});

/**
 * One key set per JWKS URL: jose caches its keys for five minutes and re-fetches on an unknown
 * `kid` (rotation), at most every 30 s. Five minutes is the JWKS cache time README's key
 * rotation waits for: a key the gateway stops publishing (a leaked one) must stop verifying here
 * by then. An origin talks to one gateway, or a few; the bound keeps options computed per
 * request (the Hono middleware's function form) from growing the map.
 */
const MAX_KEY_SETS = 16;
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySet(url: URL) {
  const href = url.href;
  let set = keySets.get(href);
  if (!set) {
    set = createRemoteJWKSet(new URL(href), { cooldownDuration: 30_000, cacheMaxAge: 300_000 });
    keySets.set(href, set);
    // Map order is insertion order: the first key is the oldest set.
    for (const oldest of keySets.keys()) {
      if (keySets.size <= MAX_KEY_SETS) break;
      keySets.delete(oldest);
    }
  }
  return set;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The settings, checked before any token is read; a bad one is the application's error (a
 * `TypeError`), never a refusal of the caller's. jose skips the `aud` check when `audience` is
 * undefined, so a setting left unset (a missing binding, a JSON file) would otherwise accept an
 * assertion made for any route; a JWKS over plain http would take its keys from whoever is on
 * the path (the gateway is https, but in development: plain http on a loopback address).
 */
function checkedSettings(options: Omit<VerifyOptions, 'acceptServices'>): { jwksUrl: URL; audience: string; issuer: string; clockTolerance: number } {
  const { audience, issuer, clockTolerance = 30 } = options;
  if (typeof audience !== 'string' || audience === '') throw new TypeError('@gatehouse/verify: `audience` is required (this origin\'s audience, the route\'s `audience`).');
  if (!URL.canParse(options.jwksUrl)) throw new TypeError('@gatehouse/verify: `jwksUrl` must be an absolute URL (the gateway\'s /.well-known/jwks.json).');
  const jwksUrl = new URL(options.jwksUrl);
  if (jwksUrl.protocol !== 'https:' && !(jwksUrl.protocol === 'http:' && LOOPBACK_HOSTS.has(jwksUrl.hostname))) {
    throw new TypeError('@gatehouse/verify: `jwksUrl` must be https (plain http only to localhost, 127.0.0.1 or [::1]).');
  }
  if (issuer !== undefined && (typeof issuer !== 'string' || issuer === '')) throw new TypeError('@gatehouse/verify: `issuer`, when given, must be the gateway\'s PUBLIC_URL.');
  if (typeof clockTolerance !== 'number' || !Number.isFinite(clockTolerance) || clockTolerance < 0) throw new TypeError('@gatehouse/verify: `clockTolerance` must be a number of seconds, 0 or more.');
  return { jwksUrl, audience, issuer: issuer ?? jwksUrl.origin, clockTolerance };
}

/** A Fetch `Request`, or anything with `headers` (a Node `IncomingMessage`, a plain record). */
export type AssertionRequest = Request | { headers: Headers | Record<string, string | string[] | undefined> };

/**
 * Verifies the request's assertion; throws {@link GatehouseAssertionError} if it is missing or
 * invalid, or is a service's and `acceptServices` is not set.
 */
export async function verifyGatehouseAssertion(request: AssertionRequest, options: VerifyOptions & { acceptServices: true }): Promise<GatehouseIdentity | GatehouseService>;
export async function verifyGatehouseAssertion(request: AssertionRequest, options: VerifyOptions & { acceptServices?: false }): Promise<GatehouseIdentity>;
export async function verifyGatehouseAssertion(request: AssertionRequest, options: VerifyOptions): Promise<GatehouseIdentity | GatehouseService>;
export async function verifyGatehouseAssertion(request: AssertionRequest, options: VerifyOptions): Promise<GatehouseIdentity | GatehouseService> {
  const { jwksUrl, audience, issuer, clockTolerance } = checkedSettings(options);
  // A setting read as text ("false") is truthy: only a boolean says whether services pass.
  if (options.acceptServices !== undefined && typeof options.acceptServices !== 'boolean') throw new TypeError('@gatehouse/verify: `acceptServices` must be true or false.');
  const headers = request.headers;
  const raw = headers instanceof Headers ? headers.get(ASSERTION_HEADER) : headers[ASSERTION_HEADER];
  const token = Array.isArray(raw) ? undefined : raw;
  if (!token) throw new GatehouseAssertionError('No X-Auth-Assertion header: the request did not come through Gatehouse.');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keySet(jwksUrl), {
      algorithms: ['ES256', 'EdDSA'],
      // Gatehouse access tokens (`at+jwt`) share the keys and, with audience = PUBLIC_URL, the `aud`.
      typ: 'JWT',
      issuer,
      audience,
      requiredClaims: ['iss', 'aud', 'sub', 'sid', 'iat', 'exp'],
      maxTokenAge: MAX_LIFETIME_S,
      clockTolerance,
    }));
  } catch (e) {
    const why = e instanceof errors.JOSEError ? e.code : 'ERR_UNKNOWN';
    throw new GatehouseAssertionError(`The X-Auth-Assertion is not valid (${why}).`);
  }
  if (payload.svc !== undefined) {
    if (options.acceptServices !== true) throw new GatehouseAssertionError('The X-Auth-Assertion is a service\'s (client credentials), not a person\'s: pass acceptServices: true to accept services.');
    const service = v.safeParse(serviceClaimsSchema, payload);
    if (!service.success || service.output.sub !== service.output.client_id) throw new GatehouseAssertionError('The X-Auth-Assertion lacks service claims.');
    const s = service.output;
    return { kind: 'service', clientId: s.client_id, scope: s.scope.split(' ').filter(Boolean), sessionId: s.sid, claims: payload };
  }
  const identity = v.safeParse(identityClaimsSchema, payload);
  if (!identity.success) throw new GatehouseAssertionError('The X-Auth-Assertion lacks identity claims.');
  const p = identity.output;
  return {
    kind: 'person',
    userId: p.sub,
    email: p.email,
    emailVerified: p.email_verified,
    roles: p.roles,
    groups: p.groups,
    sessionId: p.sid,
    amr: p.amr,
    authTime: p.auth_time ?? null,
    clientId: p.client_id ?? null,
    claims: payload,
  };
}

// ---- logout notices ----

/** What an origin needs to drop its own session: whose, which gateway session, and the token's id for its single-use check. */
export interface GatehouseLogout {
  userId: string;
  /** The gateway session that ended: the `sid` of the assertions this origin received for it. */
  sessionId: string;
  /** The token's `jti`: remember it until `expiresAt` and refuse it a second time. */
  jti: string;
  issuedAt: number;
  /**
   * Until when this helper would accept the token (Unix seconds): its `exp` (at most two minutes
   * after `iat`) plus the clock tolerance. Keeping the `jti` only until the bare `exp` would let
   * the token be accepted again within the tolerance.
   */
  expiresAt: number;
  claims: JWTPayload;
}

export const LOGOUT_TOKEN_TYPE = 'logout+jwt';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Gatehouse signs each notice when it sends it, valid two minutes. */
const LOGOUT_MAX_AGE_S = 120;

const logoutClaimsSchema = v.object({
  sub: v.string(),
  sid: v.string(),
  jti: v.pipe(v.string(), v.minLength(1)),
  iat: v.number(),
  exp: v.number(),
  events: v.object({ [BACKCHANNEL_LOGOUT_EVENT]: v.record(v.string(), v.unknown()) }),
});

/**
 * Verifies a logout notice Gatehouse POSTs to a route's `logout_notify` when a gateway session
 * ends (README "Revocation"): a logout token as OpenID Connect Back-Channel Logout defines it,
 * typed `logout+jwt` (so no assertion or other token of the gateway's passes for one), with
 * `aud` the route's `logout_notify` exactly as configured (pass it as `audience`: never the
 * route's audience, so that a notice cannot pass for an assertion either), the back-channel
 * logout event, and no `nonce`. Pass the token, or the
 * request itself (a form post of `logout_token`). Throws {@link GatehouseAssertionError}.
 * The `jti` is the caller's to check once (keep it until `expiresAt`).
 *
 * @example
 * const { sessionId, jti, expiresAt } = await verifyGatehouseLogoutToken(request, { jwksUrl, audience: 'https://app.example.com/backchannel-logout' });
 * if (seen(jti, expiresAt)) return new Response(null, { status: 400 });
 * dropSessionsOf(sessionId);
 * return new Response(null, { status: 200 });
 */
export async function verifyGatehouseLogoutToken(tokenOrRequest: string | Request, options: Omit<VerifyOptions, 'acceptServices'>): Promise<GatehouseLogout> {
  const { jwksUrl, audience, issuer, clockTolerance: tolerance } = checkedSettings(options);
  const token = typeof tokenOrRequest === 'string' ? tokenOrRequest : await logoutTokenOf(tokenOrRequest);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keySet(jwksUrl), {
      algorithms: ['ES256', 'EdDSA'],
      typ: LOGOUT_TOKEN_TYPE,
      issuer,
      audience,
      requiredClaims: ['iss', 'aud', 'sub', 'sid', 'iat', 'exp', 'jti', 'events'],
      maxTokenAge: LOGOUT_MAX_AGE_S,
      clockTolerance: tolerance,
    }));
  } catch (e) {
    const why = e instanceof errors.JOSEError ? e.code : 'ERR_UNKNOWN';
    throw new GatehouseAssertionError(`The logout token is not valid (${why}).`);
  }
  // An ID token carries a nonce; a logout token never does (so one cannot be replayed as the other).
  if ('nonce' in payload) throw new GatehouseAssertionError('The logout token carries a nonce: it is not a logout token.');
  const claims = v.safeParse(logoutClaimsSchema, payload);
  if (!claims.success) throw new GatehouseAssertionError('The logout token lacks the back-channel logout event or its claims.');
  const c = claims.output;
  return { userId: c.sub, sessionId: c.sid, jti: c.jti, issuedAt: c.iat, expiresAt: Math.min(c.exp, c.iat + LOGOUT_MAX_AGE_S) + tolerance, claims: payload };
}

/**
 * A notice's form holds one token of well under a kilobyte: a body past this is refused unread.
 * The endpoint takes posts from anyone, so reading a body whole first would hold whatever was sent.
 */
const MAX_NOTICE_BODY_BYTES = 16 * 1024;

/** The `logout_token` of a form post. */
async function logoutTokenOf(request: Request): Promise<string> {
  const type = request.headers.get('content-type') ?? '';
  if (request.method !== 'POST' || !type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new GatehouseAssertionError('A logout notice is a POST of application/x-www-form-urlencoded.');
  }
  const form = await boundedText(request.body, MAX_NOTICE_BODY_BYTES);
  if (form === null) throw new GatehouseAssertionError(`The logout notice is too large (over ${MAX_NOTICE_BODY_BYTES} bytes).`);
  const token = new URLSearchParams(form).get('logout_token');
  if (!token) throw new GatehouseAssertionError('The form holds no logout_token.');
  return token;
}

/** The body as text, or null once it passes `maxBytes` (the rest is never read). */
async function boundedText(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<string | null> {
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    text += decoder.decode(value, { stream: true });
  }
}
