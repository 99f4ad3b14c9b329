/**
 * A refresh cookie planted by a page on a sibling host (`__Secure-` allows `Domain=`, so a page
 * on `wiki.example.com` can set one for `auth.example.com`, with a longer path so the browser
 * sends it first) signs no browser into the planter's account. A browser's refresh cookie is
 * used only when it is the only one and beside the `__Host-gatehouse` access cookie of the same
 * user and session (expired or not); anything else is refused, the cookies are cleared and
 * nothing is rotated. A legitimate browser, which holds both cookies of one session, refreshes
 * as before.
 */
import { decodeJwt, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { generateSigningJwk, keyringFromJwks } from '../../../src/keys/keyring';
import { issueAccessToken } from '../../../src/tokens/access-token';
import { call, countRows, defaultEnv, GOOD_PASSWORD, makeEnv, PUBLIC_URL, setCookies, testKey, type TestEnv } from '../support/helpers';
import { cookieSession } from '../support/proxy-helpers';

const ACCESS = '__Host-gatehouse';
const REFRESH = '__Secure-gatehouse-refresh';
const NAVIGATE = { accept: 'text/html', 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };
const navigation = `/auth/refresh?return_to=${encodeURIComponent('/app/page')}`;
const now = () => Math.floor(Date.now() / 1000);

type Jar = Record<typeof ACCESS | typeof REFRESH, string>;
const claims = (jar: Jar) => decodeJwt<{ sub: string; sid: string; email: string }>(jar[ACCESS]);

/** A Cookie header in exactly this order (a planted cookie with a longer path comes first). */
const cookieHeader = (...pairs: [string, string][]) => pairs.map(([name, value]) => `${name}=${value}`).join('; ');

/** A browser's refresh with this Cookie header: the navigation (GET) or the pages' POST. */
function refreshWith(how: 'GET' | 'POST', cookie: string, env: TestEnv = defaultEnv) {
  return how === 'GET' ? call(navigation, { env, headers: { ...NAVIGATE, cookie } }) : call('/auth/refresh', { env, method: 'POST', headers: { ...SAME_ORIGIN, cookie } });
}

/** What a refusal looks like: off to sign-in (GET) or 401 (POST), both cookies cleared, no new session cookie. */
async function expectRefused(how: 'GET' | 'POST', r: Response) {
  if (how === 'GET') {
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/auth/login?return_to=${encodeURIComponent('/app/page')}`);
  } else {
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
  }
  const set = setCookies(r);
  expect(set.get(ACCESS)?.value).toBe('');
  expect(set.get(REFRESH)?.value).toBe('');
}

/** True if the jar's refresh token still rotates (nothing was rotated or ended by the refusal); it is rotated now. */
async function stillRefreshes(jar: Jar, env: TestEnv = defaultEnv): Promise<boolean> {
  const r = await refreshWith('POST', cookieHeader([ACCESS, jar[ACCESS]], [REFRESH, jar[REFRESH]]), env);
  return r.status === 200;
}

const mismatchEvents = (userId: string) => countRows('auth_events', "event = 'refresh_cookie_mismatch' AND outcome = 'security' AND user_id = ?", userId);

/** An access token of the jar's session that expired an hour ago, signed with `key`. */
async function expiredAccess(jar: Jar, key: JWK = testKey): Promise<string> {
  const { sub, sid, email } = claims(jar);
  const keyring = await keyringFromJwks({ keys: [key] });
  const stale = await issueAccessToken(
    { keyring, issuer: PUBLIC_URL, audience: PUBLIC_URL },
    { userId: sub, sessionId: sid, email, emailVerified: false, roles: [], amr: ['pwd'], authTime: 0, ttlSeconds: 600 },
    now() - 3600,
  );
  return stale.token;
}

describe.each(['GET', 'POST'] as const)('%s /auth/refresh with a refresh cookie planted by a sibling host', (how) => {
  it('a signed-in victim is not signed into the attacker\'s account: refused, cookies cleared, recorded, nothing rotated', async () => {
    const victim = (await cookieSession(defaultEnv)).cookies;
    const attacker = (await cookieSession(defaultEnv)).cookies;
    // The planted cookie (Path=/auth/refresh) comes first; hono would read it.
    const r = await refreshWith(how, cookieHeader([REFRESH, attacker[REFRESH]], [ACCESS, victim[ACCESS]], [REFRESH, victim[REFRESH]]));
    await expectRefused(how, r);
    for (const line of r.headers.getSetCookie()) expect(line).not.toMatch(/^__Host-gatehouse=[^;]/);
    expect(await mismatchEvents(claims(victim).sub)).toBe(1);
    // Neither session was touched: both refresh tokens still rotate in their own browsers.
    expect(await stillRefreshes(attacker)).toBe(true);
    expect(await stillRefreshes(victim)).toBe(true);
  });

  it('two refresh cookies are refused even when the browser\'s own comes first', async () => {
    const victim = (await cookieSession(defaultEnv)).cookies;
    const attacker = (await cookieSession(defaultEnv)).cookies;
    const r = await refreshWith(how, cookieHeader([ACCESS, victim[ACCESS]], [REFRESH, victim[REFRESH]], [REFRESH, attacker[REFRESH]]));
    await expectRefused(how, r);
    expect(await mismatchEvents(claims(victim).sub)).toBe(1);
    expect(await stillRefreshes(victim)).toBe(true);
  });

  it('a signed-out victim holding only the planted cookie gets no session; no security event (the access cookie is simply missing)', async () => {
    const attacker = (await cookieSession(defaultEnv)).cookies;
    const allMismatches = () => countRows('auth_events', "event = 'refresh_cookie_mismatch'");
    const before = await allMismatches();
    const r = await refreshWith(how, cookieHeader([REFRESH, attacker[REFRESH]]));
    await expectRefused(how, r);
    expect(await allMismatches()).toBe(before);
    expect(await stillRefreshes(attacker)).toBe(true);
  });

  it('an access cookie of another user refuses: recorded, nothing rotated', async () => {
    const owner = (await cookieSession(defaultEnv)).cookies;
    const other = (await cookieSession(defaultEnv)).cookies;
    const r = await refreshWith(how, cookieHeader([ACCESS, other[ACCESS]], [REFRESH, owner[REFRESH]]));
    await expectRefused(how, r);
    expect(await mismatchEvents(claims(other).sub)).toBe(1);
    expect(await stillRefreshes(owner)).toBe(true);
  });

  it('an access cookie of another session of the same user refuses: recorded, nothing rotated or ended', async () => {
    const { email, cookies: first } = await cookieSession(defaultEnv);
    const login = await call('/auth/login', { json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
    expect(login.status, await login.clone().text()).toBe(200);
    const second = { [ACCESS]: setCookies(login).get(ACCESS)!.value, [REFRESH]: setCookies(login).get(REFRESH)!.value } as Jar;
    expect(claims(second).sid).not.toBe(claims(first).sid);
    const r = await refreshWith(how, cookieHeader([ACCESS, first[ACCESS]], [REFRESH, second[REFRESH]]));
    await expectRefused(how, r);
    expect(await mismatchEvents(claims(first).sub)).toBe(1);
    expect(await stillRefreshes(second)).toBe(true);
    expect(await stillRefreshes(first)).toBe(true);
  });

  it('a rotated refresh token of another session beside this browser\'s access cookie ends nothing: the mismatch is decided before reuse', async () => {
    const { email, cookies: first } = await cookieSession(defaultEnv);
    const login = await call('/auth/login', { json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
    const second = { [ACCESS]: setCookies(login).get(ACCESS)!.value, [REFRESH]: setCookies(login).get(REFRESH)!.value } as Jar;
    const rotatedAway = second[REFRESH];
    const onward = await refreshWith('POST', cookieHeader([ACCESS, second[ACCESS]], [REFRESH, rotatedAway]));
    expect(onward.status).toBe(200);
    const next = { [ACCESS]: setCookies(onward).get(ACCESS)!.value, [REFRESH]: setCookies(onward).get(REFRESH)!.value } as Jar;
    const r = await refreshWith(how, cookieHeader([ACCESS, first[ACCESS]], [REFRESH, rotatedAway]));
    await expectRefused(how, r);
    expect(await countRows('sessions', 'id = ? AND revoked_at IS NOT NULL', claims(second).sid)).toBe(0);
    expect(await stillRefreshes(next)).toBe(true);
  });
});

describe.each(['GET', 'POST'] as const)('%s /auth/refresh from a legitimate browser (both cookies of one session)', (how) => {
  const expectRefreshed = (r: Response) => {
    if (how === 'GET') {
      expect(r.status).toBe(303);
      expect(r.headers.get('location')).toBe('/app/page');
    } else expect(r.status).toBe(200);
    expect(setCookies(r).get(ACCESS)?.value).toMatch(/^ey/);
    expect(setCookies(r).get(REFRESH)?.value).toMatch(/^usr_/);
  };

  it('refreshes with a live access cookie', async () => {
    const jar = (await cookieSession(defaultEnv)).cookies;
    expectRefreshed(await refreshWith(how, cookieHeader([ACCESS, jar[ACCESS]], [REFRESH, jar[REFRESH]])));
  });

  it('refreshes with an expired access cookie (the usual case: that is why it refreshes)', async () => {
    const jar = (await cookieSession(defaultEnv)).cookies;
    const r = await refreshWith(how, cookieHeader([ACCESS, await expiredAccess(jar)], [REFRESH, jar[REFRESH]]));
    expectRefreshed(r);
    expect(decodeJwt(setCookies(r).get(ACCESS)!.value).sid).toBe(claims(jar).sid);
  });

  it('refreshes with an access cookie a signing key since removed signed (key rotation keeps browsers signed in)', async () => {
    const oldKey = await generateSigningJwk('ES256');
    const newKey = await generateSigningJwk('EdDSA');
    const before = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [oldKey] }) });
    const after = makeEnv({ SIGNING_KEYS: JSON.stringify({ keys: [newKey] }) });
    const jar = (await cookieSession(before)).cookies;
    expectRefreshed(await refreshWith(how, cookieHeader([ACCESS, await expiredAccess(jar, oldKey)], [REFRESH, jar[REFRESH]]), after));
  });
});
