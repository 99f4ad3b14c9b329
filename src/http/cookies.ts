/**
 * The gateway's cookies (docs/design.md, "Cookie mode"), set with hono's cookie helper so the
 * `__Host-` / `__Secure-` prefix rules are enforced for us.
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppEnv } from '../env';

/** Full names as browsers store them. */
export const ACCESS_COOKIE = '__Host-gatehouse';
export const REFRESH_COOKIE = '__Secure-gatehouse-refresh';

export function readAccessCookie(c: Context<AppEnv>): string | undefined {
  return getCookie(c, 'gatehouse', 'host');
}

export function readRefreshCookie(c: Context<AppEnv>): string | undefined {
  return getCookie(c, 'gatehouse-refresh', 'secure');
}

/**
 * Both cookies live as long as the session may be refreshed, so an expired access token still
 * reaches the gateway and a browser can be refreshed instead of being sent to sign in.
 */
export function setSessionCookies(c: Context<AppEnv>, accessToken: string, refreshToken: string, maxAge: number): void {
  const prefix = c.get('config').AUTH_PREFIX;
  setCookie(c, 'gatehouse', accessToken, { prefix: 'host', path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge });
  setCookie(c, 'gatehouse-refresh', refreshToken, { prefix: 'secure', path: prefix, httpOnly: true, secure: true, sameSite: 'Lax', maxAge });
}

/** Replaces only the access token (a step-up: same session, same refresh token). */
export function setAccessCookie(c: Context<AppEnv>, accessToken: string, maxAge: number): void {
  setCookie(c, 'gatehouse', accessToken, { prefix: 'host', path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge });
}

export function clearSessionCookies(c: Context<AppEnv>): void {
  const prefix = c.get('config').AUTH_PREFIX;
  deleteCookie(c, 'gatehouse', { prefix: 'host', path: '/', httpOnly: true, secure: true, sameSite: 'Lax' });
  deleteCookie(c, 'gatehouse-refresh', { prefix: 'secure', path: prefix, httpOnly: true, secure: true, sameSite: 'Lax' });
  // Only a position in the directory's history, but a signed-out browser keeps nothing of ours.
  if (readDirectoryBookmark(c) !== undefined) deleteCookie(c, 'gatehouse-d1', { prefix: 'secure', path: prefix, httpOnly: true, secure: true, sameSite: 'Lax' });
}

/**
 * The handle of a sign-in that still owes its second factor (auth/mfa-pending.ts). Not a token:
 * it only lets the holder *try* a second factor for one user, for a few minutes, once.
 */
export const MFA_COOKIE = '__Host-gatehouse-mfa';

export function readMfaCookie(c: Context<AppEnv>): string | undefined {
  return getCookie(c, 'gatehouse-mfa', 'host');
}

export function setMfaCookie(c: Context<AppEnv>, handle: string, maxAge: number): void {
  setCookie(c, 'gatehouse-mfa', handle, { prefix: 'host', path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge });
}

export function clearMfaCookie(c: Context<AppEnv>): void {
  deleteCookie(c, 'gatehouse-mfa', { prefix: 'host', path: '/', httpOnly: true, secure: true, sameSite: 'Lax' });
}

/**
 * Single sign-on to an app host (README "Hosts"): a random state this browser holds on the app
 * host while it fetches a code from the gateway host. The code is exchanged only together with
 * it, so a code made for someone else's browser (login CSRF) or read from a log is useless.
 * Not a credential: one per browser, kept for an hour (a sign-in on the way may take a while)
 * and reused by the browser's other tabs, so they do not replace each other's. `Path=/` as
 * `__Host-` requires.
 */
export const SSO_STATE_COOKIE = '__Host-gatehouse-sso';
const SSO_STATE_MAX_AGE = 3600;

/** The shape of a state: 16 random bytes, base64url. */
export const SSO_STATE = /^[A-Za-z0-9_-]{22}$/;

/** The `Set-Cookie` line for the state (the proxy writes its redirect by hand). */
export function ssoStateCookie(state: string): string {
  return `${SSO_STATE_COOKIE}=${state}; Max-Age=${SSO_STATE_MAX_AGE}; Path=/; HttpOnly; Secure; SameSite=Lax`;
}

export function readSsoStateCookie(c: Context<AppEnv>): string | undefined {
  return getCookie(c, 'gatehouse-sso', 'host');
}


/** True if the request carries any gateway cookie: it is then "cookie-authenticated". */
export function hasSessionCookie(c: Context<AppEnv>): boolean {
  return readAccessCookie(c) !== undefined || readRefreshCookie(c) !== undefined;
}

/**
 * The directory's bookmark after this browser's last change (auth/directory-reads.ts): its next
 * requests read the directory from a replica at least that new, so they see what it wrote. Not
 * a credential (a position in D1's log); short-lived, since replicas catch up within seconds.
 */
export const DIRECTORY_BOOKMARK_COOKIE = '__Secure-gatehouse-d1';
const DIRECTORY_BOOKMARK_MAX_AGE = 300;

export function readDirectoryBookmark(c: Context<AppEnv>): string | undefined {
  return getCookie(c, 'gatehouse-d1', 'secure');
}

export function setDirectoryBookmark(c: Context<AppEnv>, bookmark: string): void {
  const path = c.get('config').AUTH_PREFIX;
  setCookie(c, 'gatehouse-d1', bookmark, { prefix: 'secure', path, httpOnly: true, secure: true, sameSite: 'Lax', maxAge: DIRECTORY_BOOKMARK_MAX_AGE });
}
