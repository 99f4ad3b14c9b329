/**
 * The headers an origin receives (docs/design.md, "Identity sent to origins"): the client's headers
 * minus hop-by-hop ones, minus anything that could pass for identity or for the edge's facts,
 * minus the gateway's own cookies and bearer token; then the edge's `X-Forwarded-*` and, for a
 * signed-in user, `X-Auth-*` with the signed assertion (for a service, proxy/service-caller.ts
 * `serviceIdentityHeaders`). The service-token headers (`X-Gatehouse-Client-Id`, `-Secret`: a client's
 * credentials) never go on, on any route.
 */
import { ACCESS_COOKIE, MFA_COOKIE, REFRESH_COOKIE, SSO_STATE_COOKIE } from '../http/cookies';
import { FLOW_COOKIE } from '../tokens/flow-cookie-name';
import type { AuthUser } from '../env';

/** RFC 9110 §7.6.1 connection-specific headers, plus the legacy ones proxies also drop. */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * `x-auth-` is the gateway's identity (X-Auth-Client-Id included); `x-gatehouse-` its own
 * request headers, the service-token pair among them, a secret the origin must never see.
 */
const IDENTITY_PREFIXES = ['x-auth-', 'x-gatehouse-', 'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-preferred-username'];

/**
 * Names some origins take as the signed-in user, or as the path that was really asked for
 * (IIS, Symfony and Zend honour `X-Original-URL` / `X-Rewrite-URL`): with a client's values an
 * origin would see another identity or path than the one the gateway authorised.
 */
const SPOOFABLE_NAMES = new Set([
  'remote-user',
  'x-remote-user',
  'x-user',
  'x-user-id',
  'x-email',
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'forwarded',
  'x-real-ip',
]);

/** Header names compared as docs/design.md says: case-insensitively, with `_` read as `-`. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** True for a name a client could use to pose as someone, or to fake what the edge saw. */
export function isSpoofable(name: string): boolean {
  return isSpoofableCanonical(canonicalName(name));
}

/** isSpoofable for a name already in canonical form (forwardHeaders canonicalises once). */
function isSpoofableCanonical(n: string): boolean {
  return (
    SPOOFABLE_NAMES.has(n) ||
    IDENTITY_PREFIXES.some((p) => n.startsWith(p)) ||
    // The edge states these itself below; a client's own values would be taken for the edge's.
    n.startsWith('x-forwarded-')
  );
}

/**
 * Where a Cookie header that came as several lines was joined with ", " (the runtime joins
 * repeated headers that way): split there too, but only in front of one of our names, so that
 * commas inside other cookies' values survive.
 */
const JOINED_BEFORE_OURS = new RegExp(`,\\s*(?=(?:${ACCESS_COOKIE}|${REFRESH_COOKIE}|${FLOW_COOKIE}|${MFA_COOKIE}|${SSO_STATE_COOKIE})\\s*=)`);

/** The Cookie header without the gateway's cookies, or null if nothing else is left. */
export function withoutGatewayCookies(cookie: string): string | null {
  const kept = cookie
    .split(';')
    .flatMap((part) => part.split(JOINED_BEFORE_OURS))
    .map((part) => part.trim())
    .filter((part) => {
      if (!part) return false;
      const name = part.slice(0, part.includes('=') ? part.indexOf('=') : part.length).trim();
      // The OAuth flow cookie is Path=/ (a __Host- cookie), so it now reaches proxied paths too.
      return name !== ACCESS_COOKIE && name !== REFRESH_COOKIE && name !== FLOW_COOKIE && name !== MFA_COOKIE && name !== SSO_STATE_COOKIE;
    });
  return kept.length ? kept.join('; ') : null;
}

export interface ForwardFacts {
  /** From `CF-Connecting-IP`, which only the edge sets. */
  clientIp: string | null;
  proto: 'http' | 'https';
  host: string;
  /** Drop `Authorization`: it carried the gateway's own bearer token. */
  dropAuthorization: boolean;
  /** Keep `Upgrade`/`Connection` for a WebSocket handshake. */
  websocket: boolean;
}

export function forwardHeaders(incoming: Headers, facts: ForwardFacts): Headers {
  const out = new Headers();
  const connectionListed = new Set(
    (incoming.get('connection') ?? '')
      .split(',')
      .map((t) => canonicalName(t.trim()))
      .filter(Boolean),
  );
  for (const [name, value] of incoming) {
    const n = canonicalName(name);
    if (n === 'host' || n === 'cookie' || isSpoofableCanonical(n)) continue;
    if (HOP_BY_HOP.has(n) || connectionListed.has(n)) continue;
    if (n === 'authorization' && facts.dropAuthorization) continue;
    out.append(name, value);
  }
  const cookie = incoming.get('cookie');
  const kept = cookie === null ? null : withoutGatewayCookies(cookie);
  if (kept) out.set('cookie', kept);
  if (facts.websocket) {
    out.set('upgrade', 'websocket');
    out.set('connection', 'Upgrade');
  }
  if (facts.clientIp) out.set('x-forwarded-for', facts.clientIp);
  out.set('x-forwarded-proto', facts.proto);
  out.set('x-forwarded-host', facts.host);
  return out;
}

/**
 * One group name as `X-Auth-Groups` lists it: `%`, `,`, space and every character outside
 * printable ASCII percent-encoded (UTF-8), so that a name holding a comma stays one name, a
 * header holds only visible ASCII, and `decodeURIComponent` of each comma-separated part gives
 * the name back. A space left as it is would not survive: a header value loses the spaces at
 * its ends, and a list parser (RFC 9110 5.6.1) those around each comma, so ` admin` would
 * arrive as `admin`.
 */
export function headerGroupName(name: string): string {
  return name.replace(/[^\x21-\x24\x26-\x2b\x2d-\x7e]/gu, (ch) => encodeURIComponent(ch));
}

/** The identity headers of docs/design.md, for a signed-in user. */
export function identityHeaders(user: AuthUser, assertion: string): Record<string, string> {
  return {
    'x-auth-user-id': user.id,
    'x-auth-email': user.email,
    'x-auth-roles': user.roles.join(','),
    'x-auth-groups': user.groups.map(headerGroupName).join(','),
    'x-auth-session-id': user.sessionId,
    // RFC 8176 method names never hold a comma; the auth time lets an origin ask for a fresh sign-in itself.
    'x-auth-amr': user.amr.join(','),
    'x-auth-auth-time': String(user.authTime),
    'x-auth-assertion': assertion,
    ...(user.clientId === undefined ? {} : { 'x-auth-client-id': user.clientId }),
  };
}
