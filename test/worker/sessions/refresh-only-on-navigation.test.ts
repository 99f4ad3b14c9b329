/**
 * `GET /auth/refresh` rotates the session only for a top-level navigation (or a request that
 * sends no fetch metadata at all). An image, a frame or a script's fetch, from any site, gets
 * 403 and changes nothing: no cookie is set or cleared and the refresh token still works.
 */
import { describe, expect, it } from 'vitest';
import { call, defaultEnv } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';

const REFRESH = '__Secure-gatehouse-refresh';
const path = `/auth/refresh?return_to=${encodeURIComponent('/app/page')}`;
const TOP_LEVEL = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-site': 'same-origin' };

/** A GET to /auth/refresh that must be refused, and the proof it changed nothing. */
async function expectRefusedAndNothingChanged(headers: Record<string, string>, as: 'json' | 'html') {
  const { cookies } = await cookieSession(defaultEnv);
  const r = await call(path, { cookies, headers });
  expect(r.status).toBe(403);
  expect(r.headers.get('set-cookie')).toBeNull();
  expect(r.headers.get('cache-control')).toBe('no-store');
  if (as === 'json') expect(await r.json()).toMatchObject({ error: 'forbidden', error_description: expect.stringContaining('opening this address') });
  else {
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await r.text()).toContain('opening this address');
  }
  // The refresh token was not rotated: a real navigation with it still rotates.
  const after = await call(path, { cookies, headers: TOP_LEVEL });
  expect(after.status).toBe(303);
  expect(after.headers.get('location')).toBe('/app/page');
  expect(after.headers.getSetCookie().some((line) => line.startsWith(`${REFRESH}=`))).toBe(true);
}

describe('GET /auth/refresh: only a top-level navigation rotates', () => {
  it('a cross-site image: 403 forbidden (JSON), no Set-Cookie, the refresh token still works', async () => {
    await expectRefusedAndNothingChanged({ accept: 'image/avif,image/webp,*/*', 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'image', 'sec-fetch-mode': 'no-cors' }, 'json');
  });

  it('a same-origin script fetch: 403 forbidden', async () => {
    await expectRefusedAndNothingChanged({ accept: '*/*', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty', 'sec-fetch-mode': 'cors' }, 'json');
  });

  it('a navigation inside a frame: 403 as a plain page, since it asks for HTML', async () => {
    await expectRefusedAndNothingChanged({ accept: 'text/html', 'sec-fetch-site': 'same-site', 'sec-fetch-dest': 'iframe', 'sec-fetch-mode': 'navigate' }, 'html');
  });

  it('fetch metadata that does not say navigate + document (only Sec-Fetch-Site): 403', async () => {
    await expectRefusedAndNothingChanged({ 'sec-fetch-site': 'cross-site' }, 'json');
  });

  it('a refused request with a dead refresh cookie clears nothing either', async () => {
    const r = await call(path, { cookies: { [REFRESH]: 'x'.repeat(43) }, headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'image', 'sec-fetch-mode': 'no-cors' } });
    expect(r.status).toBe(403);
    expect(r.headers.get('set-cookie')).toBeNull();
  });

  it.each([
    ['a top-level navigation from another site', { accept: 'text/html', 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate', 'sec-fetch-user': '?1' }],
    ['a top-level navigation from this site', TOP_LEVEL],
    ['a request without any fetch metadata', { accept: 'text/html' }],
  ])('%s: 303 back with new cookies', async (_name, headers) => {
    const { cookies } = await cookieSession(defaultEnv);
    const r = await call(path, { cookies, headers });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/app/page');
    const refresh = r.headers.getSetCookie().find((line) => line.startsWith(`${REFRESH}=`));
    expect(refresh).toBeDefined();
    expect(refresh).not.toContain(cookies[REFRESH]);
  });
});
