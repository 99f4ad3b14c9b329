/**
 * Groups travel with the session and stay fresh: /auth/me, the assertion and X-Auth-Groups show
 * them (a name holding a comma or a space percent-encoded); a refresh re-reads them from the provider only
 * once they are GROUPS_MAX_AGE old; a user removed from a group loses the routes that need it
 * within GROUPS_MAX_AGE plus the access-token lifetime; a provider that cannot be asked keeps
 * the last groups only for GROUPS_MAX_AGE, then the refresh is refused (sign in again) where a
 * route decides on groups; sessions of earlier versions (no groups) still refresh. `Date` is
 * moved with fake timers, never by waiting.
 */
import { env, env as testEnv, runInDurableObject } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_RESPONSE_BYTES } from '../../../src/providers/http';
import { UserSessions } from '../../../src/index';
import { randomId, sha256 } from '../../../src/util/random';
import { CLOCK_TOLERANCE_S } from '../../../src/util/time';
import { bearer, call, GOOD_PASSWORD, makeEnv, seedUser, setCookies, signIn as passwordSignIn, type TestEnv } from '../support/helpers';
import { insertLegacyUser } from '../support/legacy-sessions';
import { FakeGitHub, FakeOidcProvider, huge, installFakeNetwork } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { NAV, totpCode, userWithTotp } from '../support/second-factor-helpers';
import { sessionRow, sessionsObject } from '../support/user-sessions-store';

const KEY = 'k'.repeat(20) + 'an-encryption-secret-for-tests';
const MAX_AGE = 300;
const TTL = 600;
const ENG_ROUTE = { path: '/eng', origin: 'service:ENG', auth: 'required', allow: { groups: ['eng'] } };

const now = () => Math.floor(Date.now() / 1000);

/** Moves `Date` (only) to `seconds` after `from`. */
function at(from: number, seconds: number) {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime((from + seconds) * 1000);
}
afterEach(() => {
  vi.useRealTimers();
});

beforeAll(() => {
  installFakeNetwork();
});

let n = 0;

/** A fresh provider, an env for it (`routes`: ROUTES; the ENG route by default) and a user signed in with `groups` (the claim as sent; undefined: none). */
async function signedIn(groups: unknown, routes: unknown[] = [ENG_ROUTE]) {
  n += 1;
  const idp = await FakeOidcProvider.create();
  const origin = recordingOrigin();
  const e: TestEnv = makeEnv({
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    TOKEN_ENCRYPTION_KEY: KEY,
    GROUPS_MAX_AGE: String(MAX_AGE),
    ACCESS_TOKEN_TTL: String(TTL),
    ROUTES: JSON.stringify(routes),
    ENG: origin,
  });
  const id = `fresh-${n}-${Date.now()}`;
  idp.user = { sub: id, email: `${id}@example.com`, email_verified: true, groups };
  const r = await signIn('oidc', idp, e);
  expect(r.status, await r.clone().text()).toBe(303);
  const { access, refresh } = sessionCookies(r);
  return { idp, e, origin, t0: await groupsReadAt(access), access, refresh };
}

/** When the session of `access` read its groups (Unix seconds): the clock every bound runs from. */
async function groupsReadAt(access: string): Promise<number> {
  const { sid, sub } = decodeJwt(access);
  const row = await sessionRow<{ groups_read_at: number }>('SELECT groups_read_at FROM sessions WHERE id = ?', [sid], sub);
  return row!.groups_read_at;
}

interface Refreshed {
  access_token: string;
  refresh_token: string;
}

const refreshWith = (e: TestEnv, refresh_token: string) => call('/auth/refresh', { json: { refresh_token }, env: e });

async function refreshed(e: TestEnv, token: string): Promise<Refreshed> {
  const r = await refreshWith(e, token);
  expect(r.status, await r.clone().text()).toBe(200);
  return r.json();
}

const eng = (e: TestEnv, access: string) => call('/eng/dashboard', { env: e, headers: bearer(access) });

describe('groups in what the gateway says about the user', () => {
  it('/auth/me, the assertion and X-Auth-Groups (a comma or % in a name percent-encoded), at forward-auth and through the proxy', async () => {
    const { e, origin, access } = await signedIn(['eng', 'R&D, Europe', '100%', 'Ingeniería']);
    const me = await call('/auth/me', { env: e, headers: bearer(access) });
    expect(((await me.json()) as { user: { groups: string[] } }).user.groups).toEqual(['eng', 'R&D, Europe', '100%', 'Ingeniería']);

    const verified = await call('/auth/verify', { env: e, headers: { ...bearer(access), 'x-forwarded-uri': '/eng/x' } });
    expect(verified.status).toBe(200);
    const header = verified.headers.get('x-auth-groups')!;
    expect(header).toBe('eng,R&D%2C%20Europe,100%25,Ingenier%C3%ADa');
    // Split on commas, then decode each part: the names come back whole.
    expect(header.split(',').map(decodeURIComponent)).toEqual(['eng', 'R&D, Europe', '100%', 'Ingeniería']);
    expect(decodeJwt(verified.headers.get('x-auth-assertion')!).groups).toEqual(['eng', 'R&D, Europe', '100%', 'Ingeniería']);

    expect((await eng(e, access)).status).toBe(200);
    expect(origin.seen.at(-1)!.headers['x-auth-groups']).toBe('eng,R&D%2C%20Europe,100%25,Ingenier%C3%ADa');
  });
});

describe('X-Auth-Groups cannot be read as other groups', () => {
  it('a name with a space at either end keeps it: no list parser that trims around commas, and no header that trims its value, reads another name', async () => {
    const routes = [ENG_ROUTE, { path: '/app', origin: 'service:ENG', auth: 'required' }];
    const { e, access } = await signedIn([' admin'], routes);
    const alone = (await call('/auth/verify', { env: e, headers: { ...bearer(access), 'x-forwarded-uri': '/app/x' } })).headers.get('x-auth-groups')!;
    expect(alone.split(',').map(decodeURIComponent)).toEqual([' admin']);
    const { e: e2, access: access2 } = await signedIn(['eng', ' admin', 'ops '], routes);
    const several = (await call('/auth/verify', { env: e2, headers: { ...bearer(access2), 'x-forwarded-uri': '/eng/x' } })).headers.get('x-auth-groups')!;
    // RFC 9110 lists allow spaces around each comma: a parser that drops them still gets the names back.
    expect(several.split(',').map((part) => decodeURIComponent(part.trim()))).toEqual(['eng', ' admin', 'ops ']);
    expect(several).toMatch(/^[\x21-\x7e]*$/);
  });
});

describe('how fresh group membership is', () => {
  it('a refresh re-reads groups only once they are GROUPS_MAX_AGE old', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng']);
    idp.user = { ...idp.user, groups: ['eng', 'ops'] };
    at(t0, MAX_AGE - 5);
    const early = await refreshed(e, refresh);
    expect(idp.refreshCalls).toBe(0);
    expect(decodeJwt(early.access_token).groups).toEqual(['eng']);
    at(t0, MAX_AGE);
    const late = await refreshed(e, early.refresh_token);
    expect(idp.refreshCalls).toBe(1);
    expect(decodeJwt(late.access_token).groups).toEqual(['eng', 'ops']);
    // Read again just now: the next refresh, within GROUPS_MAX_AGE of that, does not ask.
    at(t0, MAX_AGE + 60);
    const again = await refreshed(e, late.refresh_token);
    expect(idp.refreshCalls).toBe(1);
    expect(decodeJwt(again.access_token).groups).toEqual(['eng', 'ops']);
  });

  it('a user removed from a group loses the route within GROUPS_MAX_AGE plus the access-token lifetime', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng', 'staff']);
    // Removed from eng at the provider the moment after signing in.
    idp.user = { ...idp.user, groups: ['staff'] };
    // The latest refresh that still carries the old groups: just before they are GROUPS_MAX_AGE old.
    at(t0, MAX_AGE - 1);
    const last = await refreshed(e, refresh);
    const claims = decodeJwt(last.access_token);
    expect(claims.groups).toEqual(['eng', 'staff']);
    expect(claims.exp).toBe(t0 + MAX_AGE - 1 + TTL);
    expect(claims.exp! - t0).toBeLessThanOrEqual(MAX_AGE + TTL);
    at(t0, MAX_AGE + TTL - 2);
    expect((await eng(e, last.access_token)).status).toBe(200);
    // That token is past its end (and the clock tolerance): refused; the refresh re-reads, and the route refuses.
    at(t0, MAX_AGE + TTL + CLOCK_TOLERANCE_S);
    expect((await eng(e, last.access_token)).status).toBe(401);
    const next = await refreshed(e, last.refresh_token);
    expect(decodeJwt(next.access_token).groups).toEqual(['staff']);
    expect((await eng(e, next.access_token)).status).toBe(403);
  });

  for (const [name, cannotAsk] of [
    ['refuses the grant (invalid_grant)', (idp: FakeOidcProvider) => { idp.refuseRefresh = true; }],
    ['cannot be reached', (idp: FakeOidcProvider) => { idp.faults = { token: 'refuse-connection' }; }],
    ['is down', (idp: FakeOidcProvider) => { idp.faults = { token: 'down' }; }],
  ] as const) {
    it(`a provider that ${name}: the last groups serve until GROUPS_MAX_AGE, then the refresh is refused and nothing rotates`, async () => {
      const { idp, e, t0, refresh } = await signedIn(['eng']);
      cannotAsk(idp);
      at(t0, MAX_AGE - 5);
      const within = await refreshed(e, refresh);
      expect(decodeJwt(within.access_token).groups).toEqual(['eng']);
      at(t0, MAX_AGE + 1);
      const refused = await refreshWith(e, within.refresh_token);
      expect(refused.status).toBe(401);
      const body = (await refused.json()) as { error: string; error_description: string };
      expect(body.error).toBe('invalid_token');
      expect(body.error_description).toMatch(/Sign in again/);
      // Fail closed, not a trap: the refresh token was not rotated, and once the provider answers it works.
      idp.refuseRefresh = false;
      idp.faults = {};
      const recovered = await refreshed(e, within.refresh_token);
      expect(decodeJwt(recovered.access_token).groups).toEqual(['eng']);
    });
  }

  it('a provider that answers a re-read with far too much: no more than the size cap is read, and the refresh is refused', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng']);
    idp.faults = { token: 'huge' };
    const before = huge.pulled;
    at(t0, MAX_AGE + 1);
    expect((await refreshWith(e, refresh)).status).toBe(401);
    expect(huge.pulled - before).toBeGreaterThan(0);
    expect(huge.pulled - before).toBeLessThanOrEqual(MAX_RESPONSE_BYTES + 64 * 1024);
  });

  it('groups from a refreshed ID token are as old as the token: one issued minutes ago (re-sent, cached) does not count as read now', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng', 'staff']);
    // Removed from eng; but the provider answers the refresh grant with an ID token it issued
    // 500 s ago (still within the ID token age accepted), listing the groups as they were.
    idp.user = { ...idp.user, groups: ['staff'] };
    idp.tamper = (claims) => {
      if (claims.nonce === undefined) {
        claims.iat = (claims.iat as number) - 500;
        claims.groups = ['eng', 'staff'];
      }
    };
    at(t0, MAX_AGE + 1);
    const body = await refreshed(e, refresh);
    expect(decodeJwt(body.access_token).groups, 'groups 500 s old carried as fresh').toBeUndefined();
    expect((await eng(e, body.access_token)).status).toBe(403);
  });

  it('two tabs refreshing at once with a provider that rotates its refresh tokens: the one that loses the provider race gets the two-tab answer, not "sign in again"', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng']);
    idp.rotateRefresh = true;
    idp.holdRefresh = true;
    at(t0, MAX_AGE + 1);
    const settled: number[] = [];
    const both = [refreshWith(e, refresh), refreshWith(e, refresh)].map((p) => p.then((r) => (settled.push(r.status), r.status)));
    await vi.waitFor(() => expect(idp.heldRefreshes).toHaveLength(2));
    // The first re-read reaches the provider, rotates its refresh token and finishes; only then the second.
    idp.heldRefreshes[0]!();
    await vi.waitFor(() => expect(settled).toHaveLength(1));
    idp.heldRefreshes[1]!();
    const statuses = await Promise.all(both);
    idp.holdRefresh = false;
    expect(settled[0]).toBe(200);
    expect(statuses.sort()).toEqual([200, 409]);
  });

  it('a refreshed ID token about another account is not believed: refused like a provider that cannot be asked', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng']);
    idp.tamper = (claims) => {
      if (claims.nonce === undefined) claims.sub = 'somebody-else';
    };
    at(t0, MAX_AGE + 1);
    expect((await refreshWith(e, refresh)).status).toBe(401);
  });

  it('GitHub: organisations and teams are re-read through the API with the kept token; an API that fails refuses after the bound', async () => {
    const gh = FakeGitHub.create();
    const e = makeEnv({
      GITHUB_CLIENT_ID: gh.clientId,
      GITHUB_CLIENT_SECRET: gh.clientSecret,
      TOKEN_ENCRYPTION_KEY: KEY,
      GROUPS_MAX_AGE: String(MAX_AGE),
      ROUTES: JSON.stringify([{ ...ENG_ROUTE, allow: { groups: ['github:eng'] } }]),
      ENG: recordingOrigin(),
    });
    gh.githubUser = { ...gh.githubUser, id: 900_000 + n++ };
    gh.emails = [{ email: `gh-fresh-${n}-${Date.now()}@example.com`, primary: true, verified: true }];
    gh.orgs = [{ login: 'eng' }];
    gh.teams = [];
    const r = await signIn('github', gh, e);
    expect(r.status).toBe(303);
    const { access, refresh } = sessionCookies(r);
    const t0 = await groupsReadAt(access);
    gh.orgs = [{ login: 'ops' }];
    gh.teams = [{ slug: 'sre', organization: { login: 'ops' } }];
    at(t0, MAX_AGE);
    const reread = await refreshed(e, refresh);
    expect(decodeJwt(reread.access_token).groups).toEqual(['github:ops', 'github:ops/sre']);
    expect((await eng(e, reread.access_token)).status).toBe(403);
    gh.faults = { api: 'rate-limited' };
    at(t0, 2 * MAX_AGE + 1);
    expect((await refreshWith(e, reread.refresh_token)).status).toBe(401);
    gh.faults = {};
  });

  it('a browser navigation whose refresh is refused that way goes to sign-in', async () => {
    const { idp, e, t0, access, refresh } = await signedIn(['eng']);
    idp.refuseRefresh = true;
    at(t0, MAX_AGE + 1);
    const r = await call('/auth/refresh?return_to=%2Feng%2Fdashboard', { env: e, cookies: { '__Host-gatehouse': access, '__Secure-gatehouse-refresh': refresh }, headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/auth/login?return_to=%2Feng%2Fdashboard');
    expect(setCookies(r).get('__Secure-gatehouse-refresh')?.value).toBe('');
  });

  it('where no route decides on groups, no grant is kept: groups GROUPS_MAX_AGE old are dropped, the session goes on', async () => {
    const { idp, e, t0, refresh } = await signedIn(['eng'], [{ path: '/app', origin: 'https://app.internal.example', auth: 'required' }]);
    at(t0, MAX_AGE - 5);
    const within = await refreshed(e, refresh);
    expect(decodeJwt(within.access_token).groups).toEqual(['eng']);
    at(t0, MAX_AGE + 1);
    const after = await refreshed(e, within.refresh_token);
    expect(decodeJwt(after.access_token).groups).toBeUndefined();
    expect(idp.refreshCalls).toBe(0);
    const sid = decodeJwt(after.access_token).sid as string;
    expect(await sessionRow('SELECT groups, provider_grant FROM sessions WHERE id = ?', [sid], decodeJwt(after.access_token).sub)).toEqual({ groups: null, provider_grant: null });
  });

  it('no access token carries groups GROUPS_MAX_AGE old: a step-up then mints one without them', async () => {
    const { idp, e, t0, access, refresh } = await signedIn(['eng']);
    const u = await userWithTotp(e, idp.user.email, { '__Host-gatehouse': access, '__Secure-gatehouse-refresh': refresh });
    at(t0, MAX_AGE + 1);
    const r = await call('/auth/step-up', { env: e, cookies: u.jar, headers: NAV, form: { code: totpCode(u.secret, 1), return_to: '/eng' } });
    expect(r.status, await r.clone().text()).toBe(303);
    const stepped = decodeJwt(setCookies(r).get('__Host-gatehouse')!.value);
    expect(stepped.amr).toContain('otp');
    expect(stepped.groups).toBeUndefined();
  });

  it('the provider grant kept with the session is sealed, never stored in the clear', async () => {
    const { access } = await signedIn(['eng']);
    const claims = decodeJwt(access);
    const row = await sessionRow<{ provider_grant: string; provider_subject: string; groups: string }>('SELECT provider_grant, provider_subject, groups FROM sessions WHERE id = ?', [claims.sid], claims.sub);
    expect(row!.provider_grant.split('.')).toHaveLength(5);
    expect(row!.provider_grant).not.toContain('refresh-1');
    expect(JSON.parse(row!.groups)).toEqual(['eng']);
  });
});

describe('a route that denies a group cannot be passed by leaving groups out', () => {
  const DENY_ROUTE = { path: '/eng', origin: 'service:ENG', auth: 'required', policy: { allow: [{ domain: ['example.com'] }], deny: [{ groups: ['contractors'] }] } };

  it('a member of the denied group who signs in by password (no provider to vouch for groups) is refused', async () => {
    const { idp, e, access } = await signedIn(['contractors'], [DENY_ROUTE]);
    expect((await eng(e, access)).status).toBe(403);
    // The same account also has a password: that session carries no groups, which is not "in none".
    await env.DB.prepare('UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE id = ?) WHERE email = ?').bind((await seedUser({ verified: true })).id, idp.user.email!).run();
    const viaPassword = await passwordSignIn(idp.user.email!, GOOD_PASSWORD, e);
    expect(decodeJwt(viaPassword.access_token).groups).toBeUndefined();
    expect((await eng(e, viaPassword.access_token)).status, 'password session').toBe(403);
    // Someone the provider says is in no group passes.
    const { e: e2, access: clean } = await signedIn([], [DENY_ROUTE]);
    expect((await eng(e2, clean)).status).toBe(200);
  });

  it('a provider that does not send the groups claim at all (ID token and userinfo) vouches for nothing, at sign-in or at a re-read', async () => {
    // Sign-in: the claim is absent (an IdP that sends groups only for a scope not asked, a misnamed claim).
    const { e, access } = await signedIn(undefined, [DENY_ROUTE]);
    expect(decodeJwt(access).groups).toBeUndefined();
    expect((await eng(e, access)).status).toBe(403);
    // Re-read: the claim was there at sign-in, the refreshed ID token and userinfo leave it out.
    const member = await signedIn(['contractors'], [DENY_ROUTE]);
    member.idp.user = { ...member.idp.user, groups: undefined };
    at(member.t0, MAX_AGE + 1);
    const r = await refreshWith(member.e, member.refresh);
    expect(r.status, 'refresh whose re-read found no groups claim').toBe(401);
  });

  it('a step-up once the groups are GROUPS_MAX_AGE old mints a token the deny rule still refuses', async () => {
    const { idp, e, t0, access, refresh } = await signedIn(['contractors'], [DENY_ROUTE]);
    const u = await userWithTotp(e, idp.user.email, { '__Host-gatehouse': access, '__Secure-gatehouse-refresh': refresh });
    at(t0, MAX_AGE + 1);
    const r = await call('/auth/step-up', { env: e, cookies: u.jar, headers: NAV, form: { code: totpCode(u.secret, 1), return_to: '/eng' } });
    expect(r.status, await r.clone().text()).toBe(303);
    const stepped = setCookies(r).get('__Host-gatehouse')!.value;
    expect(decodeJwt(stepped).groups).toBeUndefined();
    expect((await eng(e, stepped)).status, 'stepped-up token').toBe(403);
  });
});

describe('the provider grant goes when its session ends', () => {
  const grantOf = async (access: string) => {
    const { sid, sub } = decodeJwt(access);
    return (await sessionRow<{ provider_grant: string | null }>('SELECT provider_grant FROM sessions WHERE id = ?', [sid], sub))!.provider_grant;
  };

  it('sign-out deletes it', async () => {
    const { e, access } = await signedIn(['eng']);
    expect(await grantOf(access)).not.toBeNull();
    expect((await call('/auth/logout', { env: e, method: 'POST', headers: bearer(access) })).status).toBe(200);
    expect(await grantOf(access)).toBeNull();
  });

  it('signing out everywhere, and a reused refresh token, delete it', async () => {
    const { e, refresh } = await signedIn(['eng']);
    const again = await refreshed(e, refresh);
    at(now(), 3600);
    // The first refresh token, rotated an hour ago, comes back: a theft, the session ends.
    expect((await refreshWith(e, refresh)).status).toBe(401);
    expect(await grantOf(again.access_token)).toBeNull();
    vi.useRealTimers();
    const other = await signedIn(['eng']);
    expect(await grantOf(other.access)).not.toBeNull();
    expect((await call('/auth/logout-all', { env: other.e, method: 'POST', headers: bearer(other.access) })).status).toBe(200);
    expect(await grantOf(other.access)).toBeNull();
  });
});

describe('sessions of earlier versions', () => {
  it('an object made before groups existed gains the columns, and its sessions refresh with no groups', async () => {
    const e = makeEnv({ ROUTES: JSON.stringify([{ path: '/app', origin: 'https://app.internal.example', auth: 'required' }]) });
    const { userId } = await insertLegacyUser('old-object');
    const secret = randomId(32);
    const t = now();
    await runInDurableObject(sessionsObject(userId), async (_instance, state) => {
      const sql = state.storage.sql;
      // The table as the previous version made it, holding a live session.
      sql.exec('DROP TABLE sessions');
      sql.exec(`CREATE TABLE sessions (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL, refresh_hash TEXT NOT NULL UNIQUE, family TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, revoked_at INTEGER,
        user_agent TEXT, ip TEXT, provider TEXT, amr TEXT NOT NULL DEFAULT '[]', auth_time INTEGER)`);
      sql.exec("INSERT INTO meta (key, value) VALUES ('copied_from_d1', '1') ON CONFLICT (key) DO NOTHING");
      sql.exec(
        "INSERT INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, provider, amr, auth_time) VALUES (?, ?, ?, 'fam', ?, ?, ?, 'oidc', '[\"oidc\"]', ?)",
        `ses_${randomId(12)}`, userId, await sha256(secret), t - 3600, t + 86_400, t - 600, t - 3600,
      );
      // This version starting on that storage.
      new UserSessions(state, testEnv);
      const columns = sql.exec<{ name: string }>('PRAGMA table_info(sessions)').toArray().map((c) => c.name);
      expect(columns).toEqual(expect.arrayContaining(['groups', 'groups_read_at', 'provider_subject', 'provider_grant']));
    });
    const body = await refreshed(e, `${userId}.${secret}`);
    expect(decodeJwt(body.access_token).groups).toBeUndefined();
    const me = await call('/auth/me', { env: e, headers: bearer(body.access_token) });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { groups: unknown } }).user.groups).toEqual([]);
  });
});
