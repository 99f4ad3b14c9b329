/** Drives a provider sign-in through the real Worker entry, with a fake provider on the other side. */
import { env } from 'cloudflare:test';
import { expect } from 'vitest';
import { call, PUBLIC_URL, setCookies, type TestEnv } from './helpers';
import type { Consent } from './oauth-fakes';

export const FLOW_COOKIE = '__Host-gatehouse-oauth';

export interface Started {
  location: URL;
  flowCookie: string;
  response: Response;
}

export async function startLogin(providerId: string, testEnv: TestEnv, returnTo?: string, headers?: Record<string, string>): Promise<Started> {
  const q = returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`;
  const response = await call(`/auth/login/${providerId}${q}`, { env: testEnv, headers });
  expect(response.status, await response.clone().text()).toBe(302);
  const flow = setCookies(response).get(FLOW_COOKIE);
  expect(flow).toBeDefined();
  return { location: new URL(response.headers.get('location')!), flowCookie: flow!.value, response };
}

export async function callback(consent: Consent | string, testEnv: TestEnv, flowCookie?: string): Promise<Response> {
  const path = typeof consent === 'string' ? consent : consent.callback;
  return call(path, { env: testEnv, cookies: flowCookie ? { [FLOW_COOKIE]: flowCookie } : undefined, headers: { accept: 'text/html' } });
}

/** The full dance; returns the callback response. */
export async function signIn(
  providerId: string,
  provider: { authorize: (location: string, expected: string) => Promise<Consent>; authorizeUrl: string },
  testEnv: TestEnv,
  returnTo?: string,
): Promise<Response> {
  const started = await startLogin(providerId, testEnv, returnTo);
  const consent = await provider.authorize(started.location.href, provider.authorizeUrl);
  return callback(consent, testEnv, started.flowCookie);
}

/** Access and refresh cookie values set by a successful callback. */
export function sessionCookies(response: Response): { access: string; refresh: string } {
  const jar = setCookies(response);
  return { access: jar.get('__Host-gatehouse')!.value, refresh: jar.get('__Secure-gatehouse-refresh')!.value };
}

export async function userByEmail(email: string) {
  return env.DB.prepare('SELECT * FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number; password_hash: string | null; name: string | null }>();
}

export { PUBLIC_URL };
