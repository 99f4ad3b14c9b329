/**
 * Driving the authorization endpoint as a browser would: a request URL with PKCE, a signed-in
 * browser's cookie jar, and reading where the endpoint sent it.
 */
import { expect } from 'vitest';
import type { OAuthClient } from '../../../src/storage/oauth-clients';
import { sha256 } from '../../../src/util/random';
import { call, PUBLIC_URL, type TestEnv } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';
import { NAV, type Jar } from '../support/second-factor-helpers';

/** A PKCE verifier and its S256 challenge. */
export const VERIFIER = 'verifier-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG';
export const CHALLENGE = await sha256(VERIFIER);

/** The authorization request for `client`, with `extra` parameters set (or, as null, left out). */
export function authorizeUrl(client: OAuthClient, extra: Record<string, string | null> = {}): string {
  const params: Record<string, string | null> = {
    response_type: 'code',
    client_id: client.id,
    redirect_uri: client.redirectUris[0]!,
    scope: 'openid email',
    state: 'state-123',
    nonce: 'nonce-456',
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    ...extra,
  };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null) q.append(k, v);
  return `/auth/authorize?${q}`;
}

/** A top-level navigation from the app's site (another site) by a browser with `jar`'s cookies. */
export const FROM_APP = { ...NAV, 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'document' };

export function navigate(env: TestEnv, url: string, jar?: Jar): Promise<Response> {
  return call(url, { env, cookies: jar, headers: FROM_APP });
}

export function locationOf(r: Response): URL {
  const location = r.headers.get('location');
  expect(location, `a redirect (status ${r.status})`).not.toBeNull();
  return new URL(location!, PUBLIC_URL);
}

/** The error parameters of a redirect back to the app, checked to carry `state` and `iss`. */
export function expectErrorRedirect(r: Response, redirectUri: string, error: string, state: string | null = 'state-123') {
  expect(r.status).toBe(303);
  const at = locationOf(r);
  expect(`${at.origin}${at.pathname}`).toBe(redirectUri.split('?')[0]);
  expect(at.searchParams.get('error')).toBe(error);
  expect(at.searchParams.get('error_description')).toBeTruthy();
  expect(at.searchParams.get('state')).toBe(state);
  expect(at.searchParams.get('iss')).toBe(PUBLIC_URL);
  expect(at.searchParams.get('code')).toBeNull();
}

/** A code in a redirect back to the app: the code, with `state` and `iss` checked. */
export function expectCode(r: Response, redirectUri: string, state = 'state-123'): string {
  expect(r.status, r.headers.get('location') ?? '').toBe(303);
  const at = locationOf(r);
  expect(`${at.origin}${at.pathname}`).toBe(redirectUri);
  expect(at.searchParams.get('error')).toBeNull();
  expect(at.searchParams.get('state')).toBe(state);
  expect(at.searchParams.get('iss')).toBe(PUBLIC_URL);
  const code = at.searchParams.get('code')!;
  expect(code).toMatch(/^usr_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  return code;
}

/** A browser just registered and signed in (password, cookie session). */
export async function signedInBrowser(env: TestEnv): Promise<{ email: string; jar: Jar }> {
  const { email, cookies } = await cookieSession(env);
  return { email, jar: { ...cookies } };
}
