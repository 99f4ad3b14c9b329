/**
 * Provider-initiated sign-out: a sign-in provider posts a logout token (OpenID Connect
 * Back-Channel Logout 1.0) to `/auth/backchannel-logout/:provider`, signed with its published
 * key; a verified one ends the Gatehouse sessions started from the provider session (`sid`) or
 * subject (`sub`) it names, through the fence and KV; every refusal is a 400 that ends nothing.
 */
import { env } from 'cloudflare:test';
import { decodeJwt, generateKeyPair } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteUserAndData } from '../../../src/storage/account-changes';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { bearer, call, makeEnv, seedUser, setCookies, type TestEnv } from '../support/helpers';
import { fakeHost, FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';
import { mfaEnv, NAV, totpCode, userWithTotp } from '../support/second-factor-helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { failingSessions, sessionsObject } from '../support/user-sessions-store';

const ROUTES = JSON.stringify([
  { path: '/now', origin: 'service:ORIGIN', auth: 'required', revocation: 'immediate' },
  { path: '/app', origin: 'service:ORIGIN', auth: 'required' },
]);
const origin = recordingOrigin();

let idp: FakeOidcProvider;
let gateway: TestEnv;

beforeAll(async () => {
  installFakeNetwork();
  idp = await FakeOidcProvider.create();
  gateway = makeEnv({
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    GITHUB_CLIENT_ID: 'gh-client',
    GITHUB_CLIENT_SECRET: 'gh-secret',
    ROUTES,
    ORIGIN: origin,
    // This file signs in through the provider more often in a minute than one address may: the
    // limit itself is pinned by its own test below, with a limiter of its own.
    RATE_LIMITER_OAUTH: { async limit() { return { success: true }; } },
  });
});

afterEach(() => clearRevocationCache());

let n = 0;
/** A provider account, new to the gateway. */
function providerUser(): string {
  n += 1;
  const sub = `bcl-${n}-${crypto.randomUUID()}`;
  idp.user = { sub, email: `${sub}@example.com`, email_verified: true, name: `BCL ${n}` };
  return sub;
}

interface SignedIn {
  access: string;
  userId: string;
  sessionId: string;
}

/** Signs the current provider user in, from the provider session `sid` (none: an ID token without one). */
async function signInWith(sid: string | null): Promise<SignedIn> {
  idp.user = { ...idp.user, extra: sid === null ? {} : { sid } };
  const response = await signIn('oidc', idp, gateway);
  expect(response.status, await response.clone().text()).toBe(303);
  const { access } = sessionCookies(response);
  const claims = decodeJwt<{ sub: string; sid: string }>(access);
  return { access, userId: claims.sub, sessionId: claims.sid };
}

/** The provider's server posts from its own address (its own rate-limit bucket). */
const PROVIDER_IP = { 'cf-connecting-ip': '192.0.2.10' };
const post = (token: string, provider = 'oidc', e: TestEnv = gateway) => call(`/auth/backchannel-logout/${provider}`, { env: e, headers: PROVIDER_IP, form: { logout_token: token } });
const ended = async (s: SignedIn) => (await sessionsObject(s.userId).find(s.userId, 'id', s.sessionId))?.revokedAt !== null;
const get = (path: string, s: SignedIn) => call(path, { env: gateway, headers: { ...bearer(s.access), accept: 'application/json' } });

async function lastEvent(name: string) {
  return env.DB.prepare('SELECT outcome, user_id, detail FROM auth_events WHERE event = ? ORDER BY id DESC LIMIT 1').bind(name).first<{ outcome: string; user_id: string | null; detail: string }>();
}

async function expectRefused(response: Response, reason: string, outcome: 'security' | 'failure') {
  expect(response.status).toBe(400);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(await response.json()).toEqual({ error: 'invalid_request', error_description: 'The logout token was refused.' });
  const event = await lastEvent('provider_logout_refused');
  expect(event?.outcome).toBe(outcome);
  expect(JSON.parse(event!.detail)).toMatchObject({ provider: 'oidc', reason });
}

describe('a verified logout token ends the sessions it names', () => {
  it('with sid and sub: the sessions of that provider session end at once (200, empty, no-store), the others live on', async () => {
    const sub = providerUser();
    const a = await signInWith('idp-session-a');
    const b = await signInWith('idp-session-b');
    expect((await get('/now', a)).status).toBe(200);

    const r = await post(await idp.logoutToken({ sub, sid: 'idp-session-a' }));
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('');
    expect(r.headers.get('cache-control')).toBe('no-store');

    expect(await ended(a)).toBe(true);
    expect(await ended(b)).toBe(false);
    // The immediate route asks the fence: refused on the very next request.
    expect((await get('/now', a)).status).toBe(401);
    // The cached route reads KV, written before the answer: refused once this isolate's cache is gone.
    expect(await env.REVOKED.get(`sid:${a.sessionId}`)).not.toBeNull();
    clearRevocationCache();
    expect((await get('/app', a)).status).toBe(401);
    expect((await get('/now', b)).status).toBe(200);

    const event = await lastEvent('provider_logout_received');
    expect(event?.outcome).toBe('success');
    expect(event?.user_id).toBe(a.userId);
    expect(JSON.parse(event!.detail)).toMatchObject({ provider: 'oidc', sub, sid: 'idp-session-a', sessions_ended: 1 });
  });

  it('with sub alone: every session of that account started from the provider ends', async () => {
    const sub = providerUser();
    const a = await signInWith('idp-session-c');
    const b = await signInWith(null);
    const r = await post(await idp.logoutToken({ sub }));
    expect(r.status).toBe(200);
    expect(await ended(a)).toBe(true);
    expect(await ended(b)).toBe(true);
    expect((await get('/now', b)).status).toBe(401);
    expect(JSON.parse((await lastEvent('provider_logout_received'))!.detail)).toMatchObject({ sub, sid: null, sessions_ended: 2 });
  });

  it('with sid alone: the sessions of that provider session end, found through the account it signed into', async () => {
    providerUser();
    const sid = `idp-only-${crypto.randomUUID()}`;
    const a = await signInWith(sid);
    const b = await signInWith('idp-session-other');
    expect(await env.DB.prepare('SELECT user_id FROM provider_sessions WHERE provider = ? AND sid = ?').bind('oidc', sid).first<string>('user_id')).toBe(a.userId);
    const r = await post(await idp.logoutToken({ sid }));
    expect(r.status).toBe(200);
    expect(await ended(a)).toBe(true);
    expect(await ended(b)).toBe(false);
    expect((await get('/now', a)).status).toBe(401);
    expect(JSON.parse((await lastEvent('provider_logout_received'))!.detail)).toMatchObject({ sub: null, sid, sessions_ended: 1 });
  });

  it('with a sid: a session that recorded no provider session ends too (it cannot be told apart)', async () => {
    const sub = providerUser();
    const unnamed = await signInWith(null);
    const other = await signInWith('idp-session-kept');
    expect((await post(await idp.logoutToken({ sub, sid: 'idp-session-gone' }))).status).toBe(200);
    expect(await ended(unnamed)).toBe(true);
    expect(await ended(other)).toBe(false);
  });

  it('another account of the same provider is untouched', async () => {
    providerUser();
    const mine = await signInWith('idp-shared-sid');
    const theirSub = providerUser();
    await signInWith('idp-other');
    expect((await post(await idp.logoutToken({ sub: theirSub, sid: 'idp-shared-sid' }))).status).toBe(200);
    expect(await ended(mine)).toBe(false);
  });

  it('an unknown subject: 200, nothing ended, audited', async () => {
    const r = await post(await idp.logoutToken({ sub: `nobody-${crypto.randomUUID()}`, sid: 'x' }));
    expect(r.status).toBe(200);
    const event = await lastEvent('provider_logout_received');
    expect(event?.user_id).toBeNull();
    expect(JSON.parse(event!.detail)).toMatchObject({ reason: 'unknown_subject', sessions_ended: 0 });
  });

  it('an untyped token, or one typed JWT (as Keycloak sends), is accepted', async () => {
    for (const typ of [undefined, 'JWT']) {
      const sub = providerUser();
      const s = await signInWith('idp-typ');
      expect((await post(await idp.logoutToken({ sub, sid: 'idp-typ' }, { typ }))).status).toBe(200);
      expect(await ended(s)).toBe(true);
    }
  });
});

describe('a session the provider started stays its to end', () => {
  it('after the identity is unlinked from the account, a token naming its provider session, its subject or both still ends it', async () => {
    for (const named of ['sub and sid', 'sid', 'sub'] as const) {
      const u = await seedUser({ verified: true });
      const sub = `bcl-unlinked-${crypto.randomUUID()}`;
      const sid = `idp-unlinked-${crypto.randomUUID()}`;
      idp.user = { sub, email: u.email, email_verified: true, name: 'Unlinked' };
      const s = await signInWith(sid);
      expect(s.userId).toBe(u.id);
      // The session the provider started unlinks the provider (the account keeps its password).
      const unlinked = await call('/auth/account/identities/unlink', { env: gateway, json: { provider: 'oidc', subject: sub }, headers: bearer(s.access) });
      expect(unlinked.status).toBeLessThan(400);
      expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM identities WHERE provider = ? AND subject = ?').bind('oidc', sub).first<number>('n')).toBe(0);

      expect((await post(await idp.logoutToken(named === 'sub and sid' ? { sub, sid } : named === 'sid' ? { sid } : { sub }))).status).toBe(200);
      expect(await ended(s)).toBe(true);
      expect((await get('/now', s)).status).toBe(401);
    }
  });

  it('a subject that signed in many times into another account still finds, once unlinked, the account it signed into last', async () => {
    const u = await seedUser({ verified: true });
    const earlier = await seedUser();
    const sub = `bcl-many-${crypto.randomUUID()}`;
    const later = Math.floor(Date.now() / 1000) + 86_400;
    await env.DB.batch(Array.from({ length: 120 }, (_, i) => env.DB.prepare('INSERT INTO provider_sessions (provider, sid, user_id, subject, expires_at) VALUES (?, ?, ?, ?, ?)').bind('oidc', `idp-earlier-${i}-${sub}`, earlier.id, sub, later)));
    idp.user = { sub, email: u.email, email_verified: true, name: 'Many' };
    const s = await signInWith(`idp-many-${crypto.randomUUID()}`);
    expect(s.userId).toBe(u.id);
    expect((await call('/auth/account/identities/unlink', { env: gateway, json: { provider: 'oidc', subject: sub }, headers: bearer(s.access) })).status).toBeLessThan(400);
    expect((await post(await idp.logoutToken({ sub }))).status).toBe(200);
    expect(await ended(s)).toBe(true);
  });

  it('a token naming another subject with that provider session (a sid several subjects share) ends nothing of this account', async () => {
    providerUser();
    const sid = `idp-browser-${crypto.randomUUID()}`;
    const s = await signInWith(sid);
    expect((await post(await idp.logoutToken({ sub: `someone-else-${crypto.randomUUID()}`, sid }))).status).toBe(200);
    expect(await ended(s)).toBe(false);
  });
});

describe('what a provider sign-in records goes with the account', () => {
  it('deleting the account deletes which provider sessions signed into it (and as which subject)', async () => {
    const sub = providerUser();
    const sid = `idp-deleted-${crypto.randomUUID()}`;
    const s = await signInWith(sid);
    const rows = () => env.DB.prepare('SELECT COUNT(*) AS n FROM provider_sessions WHERE user_id = ? OR subject = ?').bind(s.userId, sub).first<number>('n');
    expect(await rows()).toBe(1);
    await deleteUserAndData(env.DB, s.userId);
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM users WHERE id = ?').bind(s.userId).first<number>('n')).toBe(0);
    expect(await rows()).toBe(0);
  });
});

describe('a provider session already logged out starts no session', () => {
  it('a sign-in still in flight when its provider session ended (its code exchanged after the logout token) is refused; the next provider session, and another subject of a shared sid, sign in', async () => {
    for (const named of ['sub and sid', 'sid'] as const) {
      const sub = providerUser();
      const sid = `idp-in-flight-${crypto.randomUUID()}`;
      expect((await post(await idp.logoutToken(named === 'sid' ? { sid } : { sub, sid }))).status).toBe(200);
      idp.user = { ...idp.user, extra: { sid } };
      const late = await signIn('oidc', idp, gateway);
      expect(late.status).not.toBe(303);
      expect(setCookies(late).get('__Host-gatehouse')?.value ?? '').toBe('');
      const s = await signInWith(`${sid}-next`);
      expect(await ended(s)).toBe(false);
      // A token naming its subject ended that provider session for that subject only.
      if (named === 'sub and sid') {
        providerUser();
        await signInWith(sid);
      }
    }
  });
});

describe('the provider session is kept through a second factor', () => {
  it('a provider sign-in completed with a code keeps its sid: a token for another sid spares it, its own ends it; the password session lives on', async () => {
    const e = mfaEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    const u = await userWithTotp(e);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(u.userId).run();
    const sub = `bcl-mfa-${crypto.randomUUID()}`;
    idp.user = { sub, email: u.email, email_verified: true, name: 'Mfa', extra: { sid: 'idp-mfa' } };
    const r = await signIn('oidc', idp, e);
    expect(r.headers.get('location')).toBe('/auth/mfa');
    const done = await call('/auth/mfa', { env: e, cookies: { '__Host-gatehouse-mfa': setCookies(r).get('__Host-gatehouse-mfa')!.value }, headers: NAV, form: { code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(303);
    const claims = decodeJwt<{ sub: string; sid: string }>(setCookies(done).get('__Host-gatehouse')!.value);
    const session = { access: '', userId: claims.sub, sessionId: claims.sid };
    const passwordSession = decodeJwt<{ sid: string }>(u.jar['__Host-gatehouse']!).sid;

    expect((await post(await idp.logoutToken({ sub, sid: 'idp-other' }), 'oidc', e)).status).toBe(200);
    expect(await ended(session)).toBe(false);
    expect((await post(await idp.logoutToken({ sub, sid: 'idp-mfa' }), 'oidc', e)).status).toBe(200);
    expect(await ended(session)).toBe(true);
    expect(await ended({ ...session, sessionId: passwordSession })).toBe(false);
    // Nor does a token naming the subject alone end the session the account started with its password.
    expect((await post(await idp.logoutToken({ sub }), 'oidc', e)).status).toBe(200);
    expect(await ended({ ...session, sessionId: passwordSession })).toBe(false);
  });
});

describe('a provider session that ends while its sign-in still owes a second factor starts no session', () => {
  const cases: { name: string; claims: (sub: string, sid: string) => { sub?: string; sid?: string } }[] = [
    { name: 'named by sub and sid', claims: (sub, sid) => ({ sub, sid }) },
    { name: 'named by sid alone', claims: (_sub, sid) => ({ sid }) },
    { name: 'named by sub alone', claims: (sub) => ({ sub }) },
  ];
  for (const t of cases) {
    it(`${t.name}: the pending sign-in is spent and its code starts nothing; one from another provider session is left`, async () => {
      const e = mfaEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
      const u = await userWithTotp(e);
      await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(u.userId).run();
      const sub = `bcl-pending-${crypto.randomUUID()}`;
      const sid = `idp-pending-${crypto.randomUUID()}`;
      idp.user = { sub, email: u.email, email_verified: true, name: 'Pending', extra: { sid } };
      const r = await signIn('oidc', idp, e);
      expect(r.headers.get('location')).toBe('/auth/mfa');
      const pending = setCookies(r).get('__Host-gatehouse-mfa')!.value;

      expect((await post(await idp.logoutToken(t.claims(sub, sid)), 'oidc', e)).status).toBe(200);
      const done = await call('/auth/mfa', { env: e, cookies: { '__Host-gatehouse-mfa': pending }, headers: NAV, form: { code: totpCode(u.secret, 1) } });
      expect(done.status).not.toBe(303);
      expect(setCookies(done).get('__Host-gatehouse')?.value ?? '').toBe('');

      // A sign-in of the same account from another provider session, pending when the token
      // names only this provider session, is not the token's: left to complete.
      if (t.claims(sub, sid).sub === undefined) {
        idp.user = { ...idp.user, extra: { sid: `${sid}-next` } };
        expect((await signIn('oidc', idp, e)).headers.get('location')).toBe('/auth/mfa');
        expect((await post(await idp.logoutToken(t.claims(sub, sid)), 'oidc', e)).status).toBe(200);
        const unused = await env.DB.prepare('SELECT COUNT(*) AS n FROM mfa_pending WHERE user_id = ? AND provider_sid = ? AND used_at IS NULL').bind(u.userId, `${sid}-next`).first<number>('n');
        expect(unused).toBe(1);
      }
    });
  }
});

describe('a refused logout token: 400 invalid_request, audited, nothing ended', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: { name: string; reason: string; outcome: 'security' | 'failure'; token: (sub: string) => Promise<string> }[] = [
    { name: 'a key the provider does not publish', reason: 'bad_signature', outcome: 'failure', token: async (sub) => idp.logoutToken({ sub }, {}, (await generateKeyPair('RS256')).privateKey) },
    { name: 'HMAC with the client secret', reason: 'bad_alg', outcome: 'failure', token: (sub) => idp.logoutToken({ sub }, { alg: 'HS256' }, new TextEncoder().encode(idp.clientSecret)) },
    { name: 'another issuer', reason: 'bad_iss', outcome: 'security', token: (sub) => idp.logoutToken({ sub, iss: 'https://other-idp.example.test' }) },
    { name: 'another audience (a token the provider signed for another client)', reason: 'bad_aud', outcome: 'security', token: (sub) => idp.logoutToken({ sub, aud: 'another-client' }) },
    { name: 'no iat', reason: 'bad_iat', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, iat: undefined }) },
    { name: 'an iat ten minutes old', reason: 'bad_iat', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, iat: now() - 600, exp: now() + 60 }) },
    { name: 'an iat ten minutes ahead', reason: 'bad_iat', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, iat: now() + 600, exp: now() + 900 }) },
    { name: 'an exp past', reason: 'expired', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, iat: now() - 100, exp: now() - 70 }) },
    { name: 'no jti', reason: 'bad_jti', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, jti: undefined }) },
    { name: 'no events claim', reason: 'bad_events', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, events: undefined }) },
    { name: 'an events claim without the logout event', reason: 'bad_events', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, events: { 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {} } }) },
    { name: 'the logout event as a string', reason: 'bad_events', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, events: { 'http://schemas.openid.net/event/backchannel-logout': 'yes' } }) },
    { name: 'a nonce (an ID token posing as a logout token)', reason: 'nonce_present', outcome: 'security', token: (sub) => idp.logoutToken({ sub, nonce: 'n-1' }) },
    { name: 'neither sub nor sid', reason: 'no_subject', outcome: 'failure', token: () => idp.logoutToken({}) },
    { name: 'typed as another kind of token', reason: 'bad_typ', outcome: 'security', token: (sub) => idp.logoutToken({ sub }, { typ: 'at+jwt' }) },
    { name: 'a type that is not text', reason: 'bad_typ', outcome: 'security', token: (sub) => idp.logoutToken({ sub }, { typ: 7 as unknown as string }) },
    { name: 'longer than 8192 characters', reason: 'too_long', outcome: 'failure', token: (sub) => idp.logoutToken({ sub, padding: 'x'.repeat(9000) }) },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const sub = providerUser();
      const s = await signInWith('idp-refused');
      await expectRefused(await post(await c.token(sub)), c.reason, c.outcome);
      expect(await ended(s)).toBe(false);
      expect((await get('/now', s)).status).toBe(200);
    });
  }

  it('a replayed jti: the first post ends the session, the second is refused and ends nothing more', async () => {
    const sub = providerUser();
    const first = await signInWith('idp-replay');
    const token = await idp.logoutToken({ sub, sid: 'idp-replay' });
    expect((await post(token)).status).toBe(200);
    expect(await ended(first)).toBe(true);
    // A session the token would name (none recorded counts), from a sign-in after the logout.
    const second = await signInWith(null);
    await expectRefused(await post(token), 'replayed', 'security');
    expect(await ended(second)).toBe(false);
  });
});

describe('a forgery anyone can make raises no alert', () => {
  const hook = 'https://hooks.example.test';
  const posts = (from: number) => requests.slice(from).filter((q) => q.url.startsWith(hook));
  const unsigned = (claims: object, header: object) => {
    const part = (x: object) => btoa(JSON.stringify(x)).replaceAll('=', '').replaceAll('+', '-').replaceAll('/', '_');
    return `${part(header)}.${part(claims)}.`;
  };

  it('unknown keys, bad signatures, HMAC and none are failures, never a webhook alert; a token the provider signed for someone else still alerts', async () => {
    fakeHost(hook, () => new Response(null, { status: 204 }));
    const e = makeEnv({ ...gateway, ALERT_WEBHOOK_URL: `${hook}/alert` });
    const mine = (await generateKeyPair('RS256', { extractable: true })).privateKey;
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: idp.issuer, aud: idp.clientId, iat: now, jti: crypto.randomUUID(), sub: 'victim', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } };
    const forgeries: [string, string][] = [
      [await idp.logoutToken({ sub: 'victim' }, {}, mine), 'bad_signature'],
      [await idp.logoutToken({ sub: 'victim' }, { kid: 'made-up' }, mine), 'unknown_key'],
      [await idp.logoutToken({ sub: 'victim' }, { alg: 'HS256' }, new TextEncoder().encode(idp.clientSecret)), 'bad_alg'],
      [unsigned(claims, { alg: 'none', typ: 'logout+jwt' }), 'bad_alg'],
    ];
    const from = requests.length;
    for (const [token, reason] of forgeries) {
      const r = await post(token, 'oidc', e);
      expect(r.status).toBe(400);
      const event = await lastEvent('provider_logout_refused');
      expect({ outcome: event?.outcome, reason: JSON.parse(event!.detail).reason }).toEqual({ outcome: 'failure', reason });
    }
    expect(posts(from)).toEqual([]);
    expect((await post(await idp.logoutToken({ sub: 'victim', aud: 'another-client' }), 'oidc', e)).status).toBe(400);
    expect(posts(from)).toHaveLength(1);
  });

  it('a captured token replayed again and again alerts once', async () => {
    fakeHost(hook, () => new Response(null, { status: 204 }));
    const e = makeEnv({ ...gateway, ALERT_WEBHOOK_URL: `${hook}/alert` });
    const token = await idp.logoutToken({ sub: `replayed-${crypto.randomUUID()}` });
    expect((await post(token, 'oidc', e)).status).toBe(200);
    const from = requests.length;
    const outcomes: (string | undefined)[] = [];
    for (let i = 0; i < 4; i += 1) {
      expect((await post(token, 'oidc', e)).status).toBe(400);
      outcomes.push((await lastEvent('provider_logout_refused'))?.outcome);
    }
    expect(outcomes).toEqual(['security', 'failure', 'failure', 'failure']);
    expect(posts(from)).toHaveLength(1);
  });

  it('a client over the limit is refused before anything is recorded: a token the provider signed for another client, posted again and again, writes no audit row and raises no alert', async () => {
    fakeHost(hook, () => new Response(null, { status: 204 }));
    const e = makeEnv({ ...gateway, ALERT_WEBHOOK_URL: `${hook}/alert`, RATE_LIMITER_OAUTH: { async limit() { return { success: false }; } } });
    const refusals = () => env.DB.prepare("SELECT COUNT(*) AS n FROM auth_events WHERE event = 'provider_logout_refused'").first<number>('n');
    const theirs = await idp.logoutToken({ sub: 'victim', aud: 'another-client' });
    const before = await refusals();
    const from = requests.length;
    for (let i = 0; i < 3; i += 1) expect((await post(theirs, 'oidc', e)).status).toBe(429);
    expect(await refusals()).toBe(before);
    expect(posts(from)).toEqual([]);
  });
});

describe('the endpoint', () => {
  it('404 for an unknown provider and for GitHub (no logout tokens), whatever is posted', async () => {
    for (const provider of ['nope', 'github', 'dev']) {
      const r = await post(await idp.logoutToken({ sub: 'x' }), provider);
      expect(r.status).toBe(404);
      expect((await r.json<{ error: string }>()).error).toBe('not_found');
    }
  });

  it('a form post only, with exactly one logout_token, in a bounded body', async () => {
    const token = await idp.logoutToken({ sub: 'x' });
    const json = await call('/auth/backchannel-logout/oidc', { env: gateway, json: { logout_token: token } });
    expect(json.status).toBe(415);
    await expectRefused(await call('/auth/backchannel-logout/oidc', { env: gateway, form: { other: 'x' } }), 'no_token', 'failure');
    const twice = await call('/auth/backchannel-logout/oidc', {
      env: gateway,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `logout_token=${token}&logout_token=${token}`,
    });
    await expectRefused(twice, 'no_token', 'failure');
    const big = await call('/auth/backchannel-logout/oidc', { env: gateway, form: { logout_token: token, padding: 'x'.repeat(17 * 1024) } });
    expect(big.status).toBe(413);
  });

  it('refusals are rate-limited per client IP, with the provider sign-ins; the provider’s own tokens pass a spent limit (nobody sharing its address can hold its logouts back)', async () => {
    const keys: string[] = [];
    const limited = makeEnv({ ...gateway, RATE_LIMITER_OAUTH: { async limit(o: { key: string }) { keys.push(o.key); return { success: false }; } } });
    const forged = await idp.logoutToken({ sub: 'x' }, {}, (await generateKeyPair('RS256')).privateKey);
    expect((await post(forged, 'oidc', limited)).status).toBe(429);
    expect((await post(await idp.logoutToken({ sub: 'x' }), 'nope', limited)).status).toBe(429);
    expect(keys).toEqual(['oauth:192.0.2.10', 'oauth:192.0.2.10']);

    const sub = providerUser();
    const s = await signInWith('idp-limited');
    const r = await post(await idp.logoutToken({ sub, sid: 'idp-limited' }), 'oidc', limited);
    expect(r.status).toBe(200);
    expect(await ended(s)).toBe(true);
    expect(keys).toHaveLength(2);
  });

  it('503 (retry-after) and nothing ended when the provider keys cannot be fetched', async () => {
    const sub = providerUser();
    const s = await signInWith('idp-keys-down');
    // A provider whose keys this isolate never fetched, and whose key set is down.
    const other = await FakeOidcProvider.create(idp.clientId, idp.clientSecret);
    other.faults.jwks = 'down';
    const e = makeEnv({ ...gateway, OIDC_ISSUER: other.issuer });
    const down = await post(await other.logoutToken({ sub, sid: 'idp-keys-down' }), 'oidc', e);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(await ended(s)).toBe(false);
  });

  it('a token whose sessions could not be ended (sessions unreachable) is not spent: the provider’s retry ends them', async () => {
    const sub = providerUser();
    const s = await signInWith('idp-retry');
    const token = await idp.logoutToken({ sub, sid: 'idp-retry' });
    const failed = await post(token, 'oidc', makeEnv({ ...gateway, USER_SESSIONS: failingSessions() }));
    expect(failed.status).toBe(503);
    expect(await ended(s)).toBe(false);
    expect((await post(token)).status).toBe(200);
    expect(await ended(s)).toBe(true);
  });
});
