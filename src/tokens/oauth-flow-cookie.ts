/**
 * The OAuth flow cookie: state, PKCE verifier, nonce, provider and `return_to` in ONE cookie,
 * encrypted and authenticated (JWE, `dir` + A256GCM) so the browser can neither read the
 * verifier nor change a field, and expiring after 10 minutes (in the JWE and as Max-Age).
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { flowCookieKey } from '../crypto/derive-key';
import type { AppEnv } from '../env';
import { FLOW_COOKIE, FLOW_COOKIE_BASE } from './flow-cookie-name';

export const FLOW_TTL_SECONDS = 600;
const COOKIE = FLOW_COOKIE_BASE;
export { FLOW_COOKIE };
const PURPOSE = 'gatehouse:oauth-flow';

export interface FlowState {
  provider: string;
  state: string;
  codeVerifier: string;
  nonce: string | null;
  returnTo: string;
  /** Set when the flow links a provider to this signed-in user's account (no sign-in happens). */
  linkUserId?: string;
  /** Unix seconds when the flow stops being valid. */
  expiresAt: number;
}

/**
 * `__Host-` (so `Path=/`, no `Domain`): a browser accepts such a cookie only from this exact
 * host over https, so neither a plain-http page nor a sibling subdomain (`Domain=.example.com`,
 * which `__Secure-` allows) can plant a flow of its own (login CSRF). The narrower
 * `Path=/auth/callback` it replaces protected nothing: a path is no security boundary, and
 * scripts of this host can write any path. The proxy drops this name from origins' Set-Cookie
 * and from the Cookie header origins receive. What no cookie can stop is a script running on a
 * proxied page of this same host creating the cookie with `document.cookie` when none exists:
 * proxy only origins you trust with your users' sign-in (README).
 */
const options = { prefix: 'host', path: '/', httpOnly: true, secure: true, sameSite: 'Lax' } as const;

export async function setFlowCookie(c: Context<AppEnv>, flow: Omit<FlowState, 'expiresAt'>): Promise<void> {
  const key = await flowCookieKey(c.get('config'));
  const jwe = await new EncryptJWT({ p: flow.provider, s: flow.state, v: flow.codeVerifier, n: flow.nonce, r: flow.returnTo, ...(flow.linkUserId ? { l: flow.linkUserId } : {}) })
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setAudience(PURPOSE)
    .setIssuedAt()
    .setExpirationTime(`${FLOW_TTL_SECONDS}s`)
    .encrypt(key);
  setCookie(c, COOKIE, jwe, { ...options, maxAge: FLOW_TTL_SECONDS });
}

/** The flow the cookie holds, or null when it is missing, forged, altered or expired. */
export async function readFlowCookie(c: Context<AppEnv>): Promise<FlowState | null> {
  const value = getCookie(c, COOKIE, 'host');
  if (!value || value.length > 8192) return null;
  try {
    const key = await flowCookieKey(c.get('config'));
    const { payload } = await jwtDecrypt(value, key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
      audience: PURPOSE,
      requiredClaims: ['exp', 'iat'],
      maxTokenAge: FLOW_TTL_SECONDS,
    });
    const { p, s, v, n, r, l, exp } = payload;
    if (typeof p !== 'string' || typeof s !== 'string' || typeof v !== 'string' || typeof r !== 'string') return null;
    if (n !== null && typeof n !== 'string') return null;
    if (l !== undefined && typeof l !== 'string') return null;
    return { provider: p, state: s, codeVerifier: v, nonce: n, returnTo: r, ...(l ? { linkUserId: l } : {}), expiresAt: exp! };
  } catch {
    return null;
  }
}

export function clearFlowCookie(c: Context<AppEnv>): void {
  deleteCookie(c, COOKIE, options);
}
