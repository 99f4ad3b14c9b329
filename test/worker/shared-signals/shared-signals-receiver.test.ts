/**
 * The Shared Signals (CAEP) receiver: a configured transmitter pushes Security Event Tokens
 * (RFC 8417) to `/auth/ssf/events/:transmitter` (RFC 8935), signed with its published key;
 * `session-revoked` and `credential-change` end the sessions their subject names, through the
 * fence and KV; other events and unknown subjects are accepted and end nothing; every refusal
 * is a 400 (401 for the transmitter's bearer secret) with RFC 8935's `err`, ending nothing.
 */
import { env } from 'cloudflare:test';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { transmittersOf } from '../../../src/config/shared-signals';
import { unlinkIdentityKeepingOne } from '../../../src/storage/account-changes';
import { clearRevocationCache } from '../../../src/storage/revocation';
import { bearer, call, makeEnv, PUBLIC_URL, seedUser, signIn as passwordSignIn, type TestEnv } from '../support/helpers';
import { fakeHost, FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import { failingSessions, sessionsObject } from '../support/user-sessions-store';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
const TRANSMITTER = 'https://ssf.example.test';
const JWKS_URI = `${TRANSMITTER}/jwks`;
const AUDIENCE = `${PUBLIC_URL}/auth/ssf/events/idp`;
const SECRET = `ssf-secret-${crypto.randomUUID()}`;
const KID = 'ssf-key-1';

const ROUTES = JSON.stringify([
  { path: '/now', origin: 'service:ORIGIN', auth: 'required', revocation: 'immediate' },
  { path: '/app', origin: 'service:ORIGIN', auth: 'required' },
]);
const TRANSMITTERS = [
  { id: 'idp', issuer: TRANSMITTER, jwks_uri: JWKS_URI, provider: 'oidc' },
  { id: 'secured', issuer: TRANSMITTER, jwks_uri: JWKS_URI, provider: 'oidc', audience: 'urn:gatehouse:ssf', authorization: SECRET },
  // Names users by the sign-in provider's own issuer (set in beforeAll, once the provider exists).
  { id: 'by-provider', issuer: TRANSMITTER, jwks_uri: JWKS_URI, provider: 'oidc', subject_issuers: [] as string[] },
];

let idp: FakeOidcProvider;
let gateway: TestEnv;
let signingKey: CryptoKey;

beforeAll(async () => {
  installFakeNetwork();
  idp = await FakeOidcProvider.create();
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  fakeHost(TRANSMITTER, (r) => (new URL(r.url).pathname === '/jwks' ? Response.json({ keys: [jwk] }) : new Response('not found', { status: 404 })));
  TRANSMITTERS[2]!.subject_issuers = [idp.issuer];
  gateway = makeEnv({
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    ROUTES,
    ORIGIN: recordingOrigin(),
    SHARED_SIGNALS: JSON.stringify(TRANSMITTERS),
    RATE_LIMITER_OAUTH: { async limit() { return { success: true }; } },
  });
});

afterEach(() => clearRevocationCache());

const now = () => Math.floor(Date.now() / 1000);

/** A SET from the transmitter, right in every claim unless `claims` or `header` say otherwise (a claim set to undefined is left out). */
async function securityEvent(claims: JWTPayload = {}, header: { alg?: string; kid?: string; typ?: string } = {}, key?: CryptoKey | Uint8Array): Promise<string> {
  const all: JWTPayload = { iss: TRANSMITTER, aud: AUDIENCE, iat: now(), jti: crypto.randomUUID(), events: { [SESSION_REVOKED]: {} }, ...claims };
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
  const protectedHeader: { alg: string; kid?: string; typ?: string } = { alg: 'ES256', kid: KID, typ: 'secevent+jwt', ...header };
  if (protectedHeader.typ === undefined) delete protectedHeader.typ;
  return new SignJWT(all).setProtectedHeader(protectedHeader).sign(key ?? signingKey);
}

const issSub = (sub: string, iss = TRANSMITTER) => ({ format: 'iss_sub', iss, sub });
const complex = (user: object | undefined, sid: string | undefined) => ({ format: 'complex', ...(user ? { user } : {}), ...(sid ? { session: { format: 'opaque', id: sid } } : {}) });

const TRANSMITTER_IP = { 'cf-connecting-ip': '192.0.2.20' };
const push = (token: string, opts: { id?: string; env?: TestEnv; headers?: Record<string, string> } = {}) =>
  call(`/auth/ssf/events/${opts.id ?? 'idp'}`, { env: opts.env ?? gateway, headers: { 'content-type': 'application/secevent+jwt', ...TRANSMITTER_IP, ...opts.headers }, body: token });

let n = 0;
/** A provider account new to the gateway; `email`: that of an existing account. */
function providerUser(email?: string): string {
  n += 1;
  const sub = `ssf-${n}-${crypto.randomUUID()}`;
  idp.user = { sub, email: email ?? `${sub}@example.com`, email_verified: true, name: `SSF ${n}` };
  return sub;
}

interface SignedIn {
  access: string;
  userId: string;
  sessionId: string;
}

/** Signs the current provider user in, from the provider session `sid`. */
async function signInWith(sid: string | null): Promise<SignedIn> {
  idp.user = { ...idp.user, extra: sid === null ? {} : { sid } };
  const response = await signIn('oidc', idp, gateway);
  expect(response.status, await response.clone().text()).toBe(303);
  const { access } = sessionCookies(response);
  const claims = decodeJwt<{ sub: string; sid: string }>(access);
  return { access, userId: claims.sub, sessionId: claims.sid };
}

/** A password session of the account with this address. */
async function passwordSession(email: string): Promise<SignedIn> {
  const tokens = await passwordSignIn(email, undefined, gateway);
  const claims = decodeJwt<{ sub: string; sid: string }>(tokens.access_token);
  return { access: tokens.access_token, userId: claims.sub, sessionId: claims.sid };
}

const ended = async (s: SignedIn) => (await sessionsObject(s.userId).find(s.userId, 'id', s.sessionId))?.revokedAt !== null;
const get = (path: string, s: SignedIn) => call(path, { env: gateway, headers: { ...bearer(s.access), accept: 'application/json' } });

async function lastEvent(name: string) {
  return env.DB.prepare('SELECT outcome, user_id, detail FROM auth_events WHERE event = ? ORDER BY id DESC LIMIT 1').bind(name).first<{ outcome: string; user_id: string | null; detail: string }>();
}

async function expectAccepted(response: Response) {
  expect(response.status, await response.clone().text()).toBe(202);
  expect(await response.text()).toBe('');
  expect(response.headers.get('cache-control')).toBe('no-store');
}

async function expectRefused(response: Response, err: string, reason: string, outcome: 'security' | 'failure', status = 400) {
  expect(response.status).toBe(status);
  expect(response.headers.get('cache-control')).toBe('no-store');
  const body = await response.json<{ err: string; description: string; error: string; error_description: string }>();
  expect(body.err).toBe(err);
  expect(body.description).toBe(body.error_description);
  expect(body.error).toBe(status === 401 ? 'invalid_token' : 'invalid_request');
  const event = await lastEvent('shared_signal_refused');
  expect(event?.outcome).toBe(outcome);
  expect(JSON.parse(event!.detail)).toMatchObject({ transmitter: expect.any(String), reason });
}

describe('session-revoked ends the sessions its subject names', () => {
  it('a provider session named (complex user and session): the sessions started from it end at once (202, empty, no-store), the others live on', async () => {
    const sub = providerUser();
    const a = await signInWith('ssf-session-a');
    const b = await signInWith('ssf-session-b');
    expect((await get('/now', a)).status).toBe(200);

    await expectAccepted(await push(await securityEvent({ sub_id: complex(issSub(sub), 'ssf-session-a') })));

    expect(await ended(a)).toBe(true);
    expect(await ended(b)).toBe(false);
    // The immediate route asks the fence: refused on the very next request.
    expect((await get('/now', a)).status).toBe(401);
    expect(await env.REVOKED.get(`sid:${a.sessionId}`)).not.toBeNull();
    expect((await get('/now', b)).status).toBe(200);
    const event = await lastEvent('shared_signal_received');
    expect(event?.user_id).toBe(a.userId);
    expect(JSON.parse(event!.detail)).toMatchObject({ transmitter: 'idp', event_type: SESSION_REVOKED, subject_format: 'iss_sub', sid: 'ssf-session-a', sessions_ended: 1 });
  });

  it('a provider session named alone (complex with session only): found through the account it signed into', async () => {
    providerUser();
    const sid = `ssf-only-${crypto.randomUUID()}`;
    const a = await signInWith(sid);
    const b = await signInWith('ssf-session-other');
    await expectAccepted(await push(await securityEvent({ sub_id: complex(undefined, sid) })));
    expect(await ended(a)).toBe(true);
    expect(await ended(b)).toBe(false);
    expect((await get('/now', a)).status).toBe(401);
  });

  it('the user alone (iss_sub): every session of the account ends, its password sessions too', async () => {
    const u = await seedUser({ verified: true });
    const sub = providerUser(u.email);
    const fromProvider = await signInWith('ssf-user-only');
    expect(fromProvider.userId).toBe(u.id);
    const withPassword = await passwordSession(u.email);
    await expectAccepted(await push(await securityEvent({ sub_id: issSub(sub) })));
    expect(await ended(fromProvider)).toBe(true);
    expect(await ended(withPassword)).toBe(true);
    expect((await get('/now', withPassword)).status).toBe(401);
    expect(JSON.parse((await lastEvent('shared_signal_received'))!.detail)).toMatchObject({ subject_format: 'iss_sub', sid: null, sessions_ended: 2 });
  });

  it('a subject since unlinked from the account it signed into: the sessions the provider started there end, the account’s others live on', async () => {
    const u = await seedUser({ verified: true });
    const sub = providerUser(u.email);
    const fromProvider = await signInWith(`ssf-unlinked-${crypto.randomUUID()}`);
    expect(fromProvider.userId).toBe(u.id);
    const withPassword = await passwordSession(u.email);
    expect(await unlinkIdentityKeepingOne(env.DB, u.id, 'oidc', sub)).toBe(true);
    await expectAccepted(await push(await securityEvent({ sub_id: issSub(sub) })));
    expect(await ended(fromProvider)).toBe(true);
    expect((await get('/now', fromProvider)).status).toBe(401);
    expect(await ended(withPassword)).toBe(false);
    const event = await lastEvent('shared_signal_received');
    expect(event?.user_id).toBe(u.id);
    expect(JSON.parse(event!.detail)).toMatchObject({ sessions_ended: 1 });
  });

  it('a provider session we cannot map: every session of the user ends rather than that one live on', async () => {
    const sub = providerUser();
    const a = await signInWith('ssf-known');
    const b = await signInWith('ssf-known-2');
    await expectAccepted(await push(await securityEvent({ sub_id: complex(issSub(sub), `never-recorded-${crypto.randomUUID()}`) })));
    expect(await ended(a)).toBe(true);
    expect(await ended(b)).toBe(true);
  });

  it('an opaque subject is the user’s subject at the provider', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-opaque');
    await expectAccepted(await push(await securityEvent({ sub_id: { format: 'opaque', id: sub } })));
    expect(await ended(s)).toBe(true);
    expect((await get('/now', s)).status).toBe(401);
  });

  it('an email subject: the account with that verified address; an unverified address matches no account', async () => {
    const verified = await seedUser({ verified: true });
    const v = await passwordSession(verified.email);
    await expectAccepted(await push(await securityEvent({ sub_id: { format: 'email', email: verified.email.toUpperCase() } })));
    expect(await ended(v)).toBe(true);
    expect((await get('/now', v)).status).toBe(401);

    const unverified = await seedUser({ verified: false });
    const u = await passwordSession(unverified.email);
    await expectAccepted(await push(await securityEvent({ sub_id: { format: 'email', email: unverified.email } })));
    expect(await ended(u)).toBe(false);
    expect((await get('/now', u)).status).toBe(200);
    const event = await lastEvent('shared_signal_received');
    expect(event?.user_id).toBeNull();
    expect(JSON.parse(event!.detail)).toMatchObject({ reason: 'unknown_subject', sessions_ended: 0 });
  });

  it('an email subject outside ASCII matches no account, not even the one its lower-casing folds into (the Kelvin sign K is not k)', async () => {
    const kevin = await seedUser({ email: `kevin-${crypto.randomUUID()}@example.com`, verified: true });
    const s = await passwordSession(kevin.email);
    await expectAccepted(await push(await securityEvent({ sub_id: { format: 'email', email: kevin.email.replace('k', '\u212A') } })));
    expect(await ended(s)).toBe(false);
    expect((await get('/now', s)).status).toBe(200);
    const event = await lastEvent('shared_signal_received');
    expect(event?.user_id).toBeNull();
    expect(JSON.parse(event!.detail)).toMatchObject({ reason: 'unknown_subject', sessions_ended: 0 });
  });

  it('iss_sub names a subject of the issuers set in subject_issuers, and of no other', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-subject-issuers');
    const aud = `${PUBLIC_URL}/auth/ssf/events/by-provider`;
    await expectAccepted(await push(await securityEvent({ aud, sub_id: issSub(sub) }), { id: 'by-provider' }));
    expect(await ended(s)).toBe(false);
    expect(JSON.parse((await lastEvent('shared_signal_received'))!.detail)).toMatchObject({ reason: 'subject_issuer_not_mapped' });
    await expectAccepted(await push(await securityEvent({ aud, sub_id: issSub(sub, idp.issuer) }), { id: 'by-provider' }));
    expect(await ended(s)).toBe(true);
  });

  it('a provider session named before its sign-in completed: the sign-in from it is refused when it arrives, the next provider session signs in', async () => {
    const sub = providerUser();
    const sid = `ssf-in-flight-${crypto.randomUUID()}`;
    await expectAccepted(await push(await securityEvent({ sub_id: complex(issSub(sub), sid) })));
    idp.user = { ...idp.user, extra: { sid } };
    const late = await signIn('oidc', idp, gateway);
    expect(late.status).not.toBe(303);
    const next = await signInWith(`${sid}-next`);
    expect(await ended(next)).toBe(false);
  });

  it('the older CAEP drafts’ subject inside the event is read when there is no sub_id', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-legacy');
    await expectAccepted(await push(await securityEvent({ events: { [SESSION_REVOKED]: { subject: { subject_type: 'iss-sub', format: 'iss_sub', iss: TRANSMITTER, sub } } } })));
    expect(await ended(s)).toBe(true);
  });
});

describe('credential-change', () => {
  for (const change of ['update', 'delete', 'revoke']) {
    it(`change_type ${change}: every session of the account ends`, async () => {
      const u = await seedUser({ verified: true });
      const sub = providerUser(u.email);
      const a = await signInWith('ssf-cred');
      const b = await passwordSession(u.email);
      await expectAccepted(await push(await securityEvent({ sub_id: issSub(sub), events: { [CREDENTIAL_CHANGE]: { credential_type: 'password', change_type: change } } })));
      expect(await ended(a)).toBe(true);
      expect(await ended(b)).toBe(true);
      expect((await get('/now', b)).status).toBe(401);
      expect(JSON.parse((await lastEvent('shared_signal_received'))!.detail)).toMatchObject({ event_type: CREDENTIAL_CHANGE, change_type: change, sessions_ended: 2 });
    });
  }

  it('change_type create (a credential added) ends nothing: accepted and audited', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-cred-create');
    await expectAccepted(await push(await securityEvent({ sub_id: issSub(sub), events: { [CREDENTIAL_CHANGE]: { credential_type: 'fido2-roaming', change_type: 'create' } } })));
    expect(await ended(s)).toBe(false);
    expect(JSON.parse((await lastEvent('shared_signal_received'))!.detail)).toMatchObject({ change_type: 'create', reason: 'credential_created', sessions_ended: 0 });
  });

  it('a missing or unknown change_type is refused', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-cred-bad');
    for (const event of [{ credential_type: 'password' }, { credential_type: 'password', change_type: 'rotate' }]) {
      await expectRefused(await push(await securityEvent({ sub_id: issSub(sub), events: { [CREDENTIAL_CHANGE]: event } })), 'invalid_request', 'bad_change_type', 'failure');
    }
    expect(await ended(s)).toBe(false);
  });
});

describe('accepted, nothing ended', () => {
  it('an event type this receiver does not act on (202, audited)', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-other-event');
    await expectAccepted(await push(await securityEvent({ sub_id: issSub(sub), events: { 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change': { claims: { role: 'x' } } } })));
    expect(await ended(s)).toBe(false);
    expect(JSON.parse((await lastEvent('shared_signal_received'))!.detail)).toMatchObject({ reason: 'unknown_event_type', sessions_ended: 0 });
  });

  it('a subject matching no account, one of another issuer, one of an unsupported format: 202 (whether an account exists is not told), audited', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-nobody');
    const cases: [object, string][] = [
      [issSub(`nobody-${crypto.randomUUID()}`), 'unknown_subject'],
      [issSub(sub, 'https://another-idp.example.test'), 'subject_issuer_not_mapped'],
      // Its provider session is ours, but the user it names is another issuer's: nothing of ours.
      [complex(issSub(sub, 'https://another-idp.example.test'), 'ssf-nobody'), 'subject_issuer_not_mapped'],
      [{ format: 'phone_number', phone_number: '+15555550100' }, 'unsupported_subject'],
      [{ format: 'complex', tenant: { format: 'opaque', id: 't1' } }, 'unsupported_subject'],
    ];
    for (const [subject, reason] of cases) {
      await expectAccepted(await push(await securityEvent({ sub_id: subject })));
      const event = await lastEvent('shared_signal_received');
      expect(event?.user_id).toBeNull();
      expect(JSON.parse(event!.detail)).toMatchObject({ reason, sessions_ended: 0 });
    }
    expect(await ended(s)).toBe(false);
  });
});

describe('a refused SET: 400 with RFC 8935’s err, audited, nothing ended', () => {
  const cases: { name: string; err: string; reason: string; outcome: 'security' | 'failure'; token: (sub: string) => Promise<string> }[] = [
    { name: 'a key the transmitter does not publish (same kid)', err: 'invalid_key', reason: 'bad_signature', outcome: 'failure', token: async (sub) => securityEvent({ sub_id: issSub(sub) }, {}, (await generateKeyPair('ES256')).privateKey) },
    { name: 'an unknown kid', err: 'invalid_key', reason: 'unknown_key', outcome: 'failure', token: async (sub) => securityEvent({ sub_id: issSub(sub) }, { kid: 'made-up' }, (await generateKeyPair('ES256')).privateKey) },
    { name: 'HMAC', err: 'invalid_key', reason: 'bad_alg', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub) }, { alg: 'HS256' }, new TextEncoder().encode(SECRET)) },
    { name: 'another issuer', err: 'invalid_issuer', reason: 'bad_iss', outcome: 'security', token: (sub) => securityEvent({ sub_id: issSub(sub), iss: 'https://other.example.test' }) },
    { name: 'another audience', err: 'invalid_audience', reason: 'bad_aud', outcome: 'security', token: (sub) => securityEvent({ sub_id: issSub(sub), aud: 'https://elsewhere.example.test' }) },
    { name: 'typed as a logout token', err: 'invalid_request', reason: 'bad_typ', outcome: 'security', token: (sub) => securityEvent({ sub_id: issSub(sub) }, { typ: 'logout+jwt' }) },
    { name: 'typed as an access token', err: 'invalid_request', reason: 'bad_typ', outcome: 'security', token: (sub) => securityEvent({ sub_id: issSub(sub) }, { typ: 'at+jwt' }) },
    { name: 'untyped', err: 'invalid_request', reason: 'bad_typ', outcome: 'security', token: (sub) => securityEvent({ sub_id: issSub(sub) }, { typ: undefined }) },
    { name: 'a nonce', err: 'invalid_request', reason: 'nonce_present', outcome: 'security', token: (sub) => securityEvent({ sub_id: issSub(sub), nonce: 'n-1' }) },
    { name: 'no events claim', err: 'invalid_request', reason: 'bad_events', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), events: undefined }) },
    { name: 'two events', err: 'invalid_request', reason: 'bad_events', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), events: { [SESSION_REVOKED]: {}, [CREDENTIAL_CHANGE]: { change_type: 'update' } } }) },
    { name: 'the event as a string', err: 'invalid_request', reason: 'bad_events', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), events: { [SESSION_REVOKED]: 'yes' } }) },
    { name: 'no iat', err: 'invalid_request', reason: 'bad_iat', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), iat: undefined }) },
    { name: 'an iat ten minutes old', err: 'invalid_request', reason: 'bad_iat', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), iat: now() - 600 }) },
    { name: 'an iat ten minutes ahead', err: 'invalid_request', reason: 'bad_iat', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), iat: now() + 600 }) },
    { name: 'no jti', err: 'invalid_request', reason: 'bad_jti', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), jti: undefined }) },
    { name: 'no subject', err: 'invalid_request', reason: 'bad_subject', outcome: 'failure', token: () => securityEvent({}) },
    { name: 'a malformed subject', err: 'invalid_request', reason: 'bad_subject', outcome: 'failure', token: () => securityEvent({ sub_id: { format: 'iss_sub', iss: TRANSMITTER } }) },
    { name: 'longer than 8192 characters', err: 'invalid_request', reason: 'too_long', outcome: 'failure', token: (sub) => securityEvent({ sub_id: issSub(sub), padding: 'x'.repeat(9000) }) },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const sub = providerUser();
      const s = await signInWith('ssf-refused');
      await expectRefused(await push(await c.token(sub)), c.err, c.reason, c.outcome);
      expect(await ended(s)).toBe(false);
      expect((await get('/now', s)).status).toBe(200);
    });
  }

  it('a replayed jti: the first push ends the session, the second is refused and ends nothing more', async () => {
    const sub = providerUser();
    const first = await signInWith('ssf-replay');
    const token = await securityEvent({ sub_id: issSub(sub) });
    await expectAccepted(await push(token));
    expect(await ended(first)).toBe(true);
    const second = await signInWith('ssf-replay-2');
    await expectRefused(await push(token), 'invalid_request', 'replayed', 'security');
    expect(await ended(second)).toBe(false);
    expect((await get('/now', second)).status).toBe(200);
  });
});

describe('the endpoint', () => {
  it('404 when no transmitter is configured, and for a transmitter not configured', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-404');
    const token = await securityEvent({ sub_id: issSub(sub) });
    const off = makeEnv({ ...gateway, SHARED_SIGNALS: undefined });
    for (const [id, e] of [['idp', off], ['nope', gateway]] as const) {
      const r = await push(token, { id, env: e });
      expect(r.status).toBe(404);
      expect((await r.json<{ error: string }>()).error).toBe('not_found');
    }
    expect(await ended(s)).toBe(false);
  });

  it('only application/secevent+jwt (415 otherwise), a non-empty body, bounded (413)', async () => {
    const token = await securityEvent({ sub_id: issSub('x') });
    const json = await call('/auth/ssf/events/idp', { env: gateway, json: { set: token } });
    expect(json.status).toBe(415);
    expect((await json.json<{ err: string }>()).err).toBe('invalid_request');
    await expectRefused(await push(''), 'invalid_request', 'no_token', 'failure');
    const big = await push(token + 'x'.repeat(17 * 1024));
    expect(big.status).toBe(413);
  });

  it('a transmitter with a bearer secret: missing or wrong is 401 authentication_failed and ends nothing; the right one passes (its own audience)', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-bearer');
    const token = await securityEvent({ sub_id: issSub(sub), aud: 'urn:gatehouse:ssf' });
    await expectRefused(await push(token, { id: 'secured' }), 'authentication_failed', 'bad_authorization', 'failure', 401);
    await expectRefused(await push(token, { id: 'secured', headers: bearer(`${SECRET}x`) }), 'authentication_failed', 'bad_authorization', 'failure', 401);
    expect(await ended(s)).toBe(false);
    // The default audience (the endpoint's URL) is not this transmitter's.
    await expectRefused(await push(await securityEvent({ sub_id: issSub(sub) }), { id: 'secured', headers: bearer(SECRET) }), 'invalid_audience', 'bad_aud', 'security');
    await expectAccepted(await push(token, { id: 'secured', headers: bearer(SECRET) }));
    expect(await ended(s)).toBe(true);
  });

  it('refusals are rate-limited per client IP; the transmitter’s own SETs pass a spent limit', async () => {
    const keys: string[] = [];
    const limited = makeEnv({ ...gateway, RATE_LIMITER_OAUTH: { async limit(o: { key: string }) { keys.push(o.key); return { success: false }; } } });
    const forged = await securityEvent({ sub_id: issSub('x') }, {}, (await generateKeyPair('ES256')).privateKey);
    expect((await push(forged, { env: limited })).status).toBe(429);
    expect((await push(forged, { id: 'nope', env: limited })).status).toBe(429);
    expect((await push(forged, { id: 'secured', env: limited })).status).toBe(429);
    expect((await push(forged, { env: limited, headers: { 'content-type': 'application/json' } })).status).toBe(429);
    expect((await push(forged + 'x'.repeat(17 * 1024), { env: limited })).status).toBe(429);
    expect((await push('', { env: limited })).status).toBe(429);
    expect(keys).toEqual(Array(6).fill('oauth:192.0.2.20'));

    const sub = providerUser();
    const s = await signInWith('ssf-limited');
    await expectAccepted(await push(await securityEvent({ sub_id: issSub(sub) }), { env: limited }));
    expect(await ended(s)).toBe(true);
    expect(keys).toHaveLength(6);
  });

  it('a client over the limit is refused before anything is recorded: a token the transmitter signed, posted again and again, writes no audit row and raises no alert', async () => {
    const hook = 'https://ssf-hooks.example.test';
    fakeHost(hook, () => new Response(null, { status: 204 }));
    const limited = makeEnv({ ...gateway, ALERT_WEBHOOK_URL: `${hook}/alert`, RATE_LIMITER_OAUTH: { async limit() { return { success: false }; } } });
    const refusals = () => env.DB.prepare("SELECT COUNT(*) AS n FROM auth_events WHERE event = 'shared_signal_refused'").first<number>('n');
    // Untyped, as an ID token of a transmitter that is also an identity provider is: any of its users holds one.
    const untyped = await securityEvent({ sub_id: issSub('x') }, { typ: undefined });
    const before = await refusals();
    const from = requests.length;
    for (let i = 0; i < 3; i += 1) expect((await push(untyped, { env: limited })).status).toBe(429);
    expect((await push(untyped, { env: limited, id: 'secured' })).status).toBe(429);
    expect(await refusals()).toBe(before);
    expect(requests.slice(from).filter((q) => q.url.startsWith(hook))).toEqual([]);
  });

  it('503 (retry-after) and nothing ended when the transmitter’s keys cannot be fetched', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-keys-down');
    const down = 'https://ssf-down.example.test';
    fakeHost(down, () => new Response('down', { status: 500 }));
    const e = makeEnv({ ...gateway, SHARED_SIGNALS: JSON.stringify([{ id: 'idp', issuer: TRANSMITTER, jwks_uri: `${down}/jwks`, provider: 'oidc' }]) });
    const r = await push(await securityEvent({ sub_id: issSub(sub) }), { env: e });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(await ended(s)).toBe(false);
  });

  it('a SET whose sessions could not be ended (sessions unreachable) is not spent: the transmitter’s retry ends them', async () => {
    const sub = providerUser();
    const s = await signInWith('ssf-retry');
    const token = await securityEvent({ sub_id: issSub(sub) });
    const failed = await push(token, { env: makeEnv({ ...gateway, USER_SESSIONS: failingSessions() }) });
    expect(failed.status).toBe(503);
    expect(await ended(s)).toBe(false);
    await expectAccepted(await push(token));
    expect(await ended(s)).toBe(true);
  });
});

describe('SHARED_SIGNALS is checked once, at the first push, and a mistake refuses every push', () => {
  const settings = (transmitters: unknown, extra: Record<string, unknown> = {}) =>
    makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, SHARED_SIGNALS: typeof transmitters === 'string' ? transmitters : JSON.stringify(transmitters), ...extra });
  const base = { id: 'idp', issuer: TRANSMITTER, jwks_uri: JWKS_URI, provider: 'oidc' };

  it('a transmitter’s audience defaults to its endpoint’s URL; subject issuers to its issuer', async () => {
    const r = parseConfig(settings(base));
    expect(r.ok).toBe(true);
    if (r.ok) expect(transmittersOf(r.config)).toEqual({ ok: true, transmitters: [{ id: 'idp', issuer: TRANSMITTER, jwksUri: JWKS_URI, audience: AUDIENCE, authorization: null, provider: 'oidc', subjectIssuers: [TRANSMITTER] }] });
  });

  it('unset: no transmitter (the endpoint answers 404)', () => {
    const r = parseConfig(makeEnv({}));
    expect(r.ok && transmittersOf(r.config)).toEqual({ ok: true, transmitters: [] });
  });

  const bad: [string, unknown, RegExp][] = [
    ['a provider that is not configured', [{ ...base, provider: 'github' }], /provider github is not a sign-in provider configured here/],
    ['a key set over plain http in production', [{ ...base, jwks_uri: 'http://ssf.example.test/jwks' }], /must use https in production/],
    ['one id twice', [base, { ...base }], /names one transmitter id twice/],
    // One SET would pass at both endpoints: each read its subjects with its own provider, and spent its jti apart.
    ['two transmitters of one issuer with one audience', [{ ...base, audience: 'urn:gatehouse' }, { ...base, id: 'idp2', audience: 'urn:gatehouse' }], /transmitters idp and idp2 .*same issuer and audience/],
    ['an audience that is another transmitter’s endpoint', [base, { ...base, id: 'idp2', audience: AUDIENCE }], /transmitters idp and idp2 .*same issuer and audience/],
    ['a short bearer secret', [{ ...base, authorization: 'short' }], /at least 32 characters .*\(at 0\.authorization\)/],
    ['a setting it does not know', [{ ...base, audiance: 'x' }], /nothing else \(at 0\.audiance\)/],
    ['something other than transmitters', 'okta', /must be a transmitter/],
    ['no issuer', [{ ...base, issuer: undefined }], /\(at 0\.issuer\)/],
    ['an id that is not a path segment', [{ ...base, id: 'a/b' }], /letters, digits/],
  ];
  for (const [name, value, message] of bad) {
    it(`refuses ${name}: every push answers 500 configuration_error naming SHARED_SIGNALS, never its value; the rest of the gateway runs on`, async () => {
      const e = settings(value);
      const token = await securityEvent({ sub_id: issSub('x') });
      const r = await push(token, { env: e });
      expect(r.status).toBe(500);
      const body = await r.json<{ error: string; error_description: string; setting: string }>();
      expect(body).toMatchObject({ error: 'configuration_error', setting: 'SHARED_SIGNALS' });
      expect(body.error_description).toMatch(message);
      expect(body.error_description).not.toContain('short');
      expect((await call('/.well-known/jwks.json', { env: e })).status).toBe(200);
    });
  }
});
