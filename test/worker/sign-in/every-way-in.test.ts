/**
 * Every way in asks for the second factor. The endpoints come from the code's own list
 * (auth/sign-in.ts `SIGN_IN_ENDPOINTS`, which the pipeline also enforces): each one is driven
 * for a user with an authenticator app, a user with a passkey, and a user in
 * MFA_REQUIRED_ROLES, and none of them gets an access token, a refresh token or a session
 * cookie without the second factor. An endpoint added to the list without a driver here fails;
 * a sign-in route left out of the list fails its own tests (the pipeline refuses it, see the
 * last group). The service entries (a client's own token: the token endpoint's client
 * credentials, the proxy's service-token headers) have no user: for them the user's address and
 * password, presented as a client's id and secret, must get nothing.
 */
import { env } from 'cloudflare:test';
import { Hono, type Context } from 'hono';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { readPendingSignIn } from '../../../src/auth/mfa-pending';
import { completeSignIn, issueServiceToken, signIn, SIGN_IN_ENDPOINTS, type SignInEndpointId } from '../../../src/auth/sign-in';
import type { OAuthClient } from '../../../src/storage/oauth-clients';
import { loadConfig } from '../../../src/config/load';
import type { AppEnv } from '../../../src/env';
import { configure } from '../../../src/middleware/configure';
import { errorHandler } from '../../../src/middleware/error-handler';
import { findUserById } from '../../../src/storage/users';
import { call, countRows, GOOD_PASSWORD, PUBLIC_URL, setCookies, type TestEnv } from '../support/helpers';
import { mailEnv, mailFor, uniqueEmail } from '../support/mail';
import { fakeHost, FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { seedClient } from '../support/oauth-clients';
import { signIn as oauthSignIn } from '../support/oauth-helpers';
import { FLAGS, postJson, SoftAuthenticator, type AuthenticationOptions, type RegistrationOptions } from '../support/passkeys-helpers';
import { ENCRYPTION_KEY, NAV, totpCode, updateJar, userWithTotp, type Jar } from '../support/second-factor-helpers';
import { sessionRows } from '../support/user-sessions-store';
import { authorizeUrl } from '../oauth/authorize-support';

type Kind = 'totp' | 'passkey' | 'role';
const KINDS: Kind[] = ['totp', 'passkey', 'role'];

/**
 * What the endpoint must answer without the second factor: `pending` (the second-factor state,
 * no token), `refused` (an error, no token: the endpoint cannot start a sign-in for this user),
 * or `sent-to-sign-in` (single sign-on to an app host: no session here, so on to the sign-in
 * page, and no code for the app host).
 */
type Expected = 'pending' | 'refused' | 'pending-or-wiped' | 'sent-to-sign-in';
/** A user set up for one endpoint, and the request under test (not yet sent). */
interface Prepared {
  userId: string;
  expected: Expected;
  send: () => Promise<Response>;
}

let idp: FakeOidcProvider;
let e: TestEnv;

beforeAll(async () => {
  // The provider is fake; the mail catcher's inbox (read by mailFor) stays reachable.
  const realFetch = globalThis.fetch;
  installFakeNetwork();
  fakeHost(new URL(inject('mail').inboxUrl).origin, (request) => realFetch(request));
  idp = await FakeOidcProvider.create();
  // Optional verification: registration signs in at once and mails a link (the confirmation
  // endpoint needs one); every sign-in method is on.
  e = mailEnv({
    EMAIL_VERIFICATION: 'optional',
    EMAIL_LOGIN: 'enabled',
    MFA_REQUIRED_ROLES: 'admin',
    TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY,
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    ROUTES: JSON.stringify([{ host: APP_HOST, path: '/', origin: 'https://origin.example.net', auth: 'required' }]),
  });
});

/** An app host (README "Hosts"): single sign-on hands it a session of the gateway host. */
const APP_HOST = 'app.example.com';
/** The state an app host gave the browser for single sign-on (its own cookie there). */
const SSO_STATE = 'AAAAAAAAAAAAAAAAAAAAAA';
/** A browser's top-level navigation, as single sign-on requires. */
const DOCUMENT_NAV = { ...NAV, 'sec-fetch-dest': 'document', 'sec-fetch-site': 'cross-site' };

/** A browser password sign-in (form) that stops at the second factor: only the pending state's cookie. */
async function pendingBrowser(email: string): Promise<Jar> {
  const r = await call('/auth/login', { env: e, form: { email, password: GOOD_PASSWORD }, headers: NAV });
  expect(r.status, await r.clone().text()).toBe(303);
  const jar = updateJar({}, r);
  expect(Object.keys(jar)).toEqual(['__Host-gatehouse-mfa']);
  return jar;
}

const SESSION_COOKIES = ['__Host-gatehouse', '__Secure-gatehouse-refresh'];

async function setRoles(userId: string, roles: string[]) {
  await env.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(roles), userId).run();
}

async function markVerified(userId: string) {
  await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(userId).run();
}

async function userIdOf(email: string): Promise<string> {
  const row = await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>();
  return row!.id;
}

/** Registers a passkey for the signed-in browser of `jar` (its sign-in is recent). */
async function addPasskey(jar: Jar, flags: number = FLAGS.UP | FLAGS.UV): Promise<SoftAuthenticator> {
  const auth = await SoftAuthenticator.create();
  const o = (await postJson('/auth/passkeys/register/options', {}, { env: e, cookies: jar })).body as unknown as RegistrationOptions;
  const r = await postJson('/auth/passkeys/register', { credential: await auth.register(o, { flags }) }, { env: e, cookies: jar });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return auth;
}

/** Gives the signed-in account of `jar` what `kind` says: an authenticator app, a passkey, or the role that requires a factor. */
async function equip(kind: Kind, email: string, jar: Jar): Promise<{ userId: string; jar: Jar }> {
  if (kind === 'totp') {
    // The set-up steps the browser's session up (amr mfa): its jar can add a passkey after.
    const { userId, jar: after } = await userWithTotp(e, email, jar);
    return { userId, jar: after };
  }
  const userId = await userIdOf(email);
  if (kind === 'passkey') await addPasskey(jar);
  else await setRoles(userId, ['admin']);
  return { userId, jar };
}

/** A password account (registered and signed in as a browser), equipped per `kind`. */
async function passwordAccount(kind: Kind, label: string) {
  const email = uniqueEmail(`${label}-${kind}`);
  const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
  expect(r.status, await r.clone().text()).toBe(201);
  const jar = updateJar({}, r);
  return { email, ...(await equip(kind, email, jar)) };
}

/** A password sign-in in token mode that stops at the second factor: its `mfa_token`. */
async function pendingToken(email: string): Promise<string> {
  const r = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } });
  expect(r.status, await r.clone().text()).toBe(401);
  return ((await r.json()) as { mfa_token: string }).mfa_token;
}

/** The latest mail to `to` with a link containing `path`. */
async function linkIn(to: string, path: string): Promise<URL> {
  const mail = (await mailFor(to)).filter((m) => m.links.some((l) => l.includes(path))).at(-1);
  if (!mail) throw new Error(`no mail with ${path} to ${to}`);
  return new URL(mail.links.find((l) => l.includes(path))!);
}

/** How to drive each sign-in endpoint of the list, for each kind of user. */
const drivers: Record<SignInEndpointId, (kind: Kind) => Promise<Prepared>> = {
  // A new account has no factor and no role yet (stored roles come later; ADMIN_EMAILS needs a
  // verified address, which registration cannot give): what this endpoint can do to such a user
  // is register over their address, and that is refused without a token.
  password_register: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'register');
    return { userId, expected: 'refused', send: () => call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } }) };
  },
  password_login: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'login');
    return { userId, expected: 'pending', send: () => call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD } }) };
  },
  // The confirmation proves the mailbox of an unverified account. Where that proof removes what
  // an unproven holder added (the factor too: the owner never added it), the owner signs in
  // without it; while the factor is there, it is asked for.
  email_verification_confirm: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'confirm');
    const token = (await linkIn(email, '/email/verify')).searchParams.get('token')!;
    return { userId, expected: kind === 'role' ? 'pending' : 'pending-or-wiped', send: () => call('/auth/email/verify', { env: e, json: { token, password: GOOD_PASSWORD } }) };
  },
  email_code_verify: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'code');
    // A verified address: the code proves the mailbox of an account that is already its owner's.
    await markVerified(userId);
    expect((await call('/auth/login/email-code', { env: e, json: { email } })).status).toBe(202);
    const mail = (await mailFor(email)).filter((m) => /^\d{8} is your/.test(m.subject)).at(-1)!;
    const code = /^(\d{8})/.exec(mail.subject)![1]!;
    return { userId, expected: 'pending', send: () => call('/auth/login/email-code/verify', { env: e, json: { email, code } }) };
  },
  oauth_callback: async (kind) => {
    const email = uniqueEmail(`oauth-${kind}`);
    idp.user = { sub: `sub-${email}`, email, email_verified: true };
    // The first provider sign-in creates the account (no factor yet) and signs the browser in.
    const first = await oauthSignIn('oidc', idp, e);
    expect(first.status).toBe(303);
    const jar = updateJar({}, first);
    const { userId } = await equip(kind, email, jar);
    return { userId, expected: 'pending', send: () => oauthSignIn('oidc', idp, e) };
  },
  // A passkey that verifies the user (PIN, biometrics: amr "mfa") is two factors in itself and
  // signs in at once, by design. One that does not is possession only, a first factor: every
  // user here signs in with such a passkey, so each also has a passkey (the `passkey` kind has
  // nothing else); the others add an authenticator app or the role.
  passkey_login: async (kind) => {
    const email = uniqueEmail(`passkey-${kind}`);
    const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD, session: 'cookie' } });
    const jar = updateJar({}, r);
    // The authenticator app or the role first: a passkey is added by a session that has them.
    const { userId, jar: equipped } = kind === 'passkey' ? { userId: await userIdOf(email), jar } : await equip(kind, email, jar);
    const key = await addPasskey(equipped, FLAGS.UP);
    const o = (await postJson('/auth/passkeys/login/options', {}, { env: e })).body as unknown as AuthenticationOptions;
    return { userId, expected: 'pending', send: async () => call('/auth/passkeys/login', { env: e, json: { credential: await key.assert(o, { flags: FLAGS.UP }) } }) };
  },
  // The completions ARE the second factor: what must hold is that a pending state with a wrong
  // factor (a wrong code; a passkey that is not the user's) gives no token.
  second_factor_code: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'mfa-code');
    const mfaToken = await pendingToken(email);
    return { userId, expected: 'refused', send: () => call('/auth/mfa', { env: e, json: { mfa_token: mfaToken, code: '000000' } }) };
  },
  second_factor_passkey: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'mfa-passkey');
    const mfaToken = await pendingToken(email);
    const options = await postJson('/auth/mfa/passkey/options', { mfa_token: mfaToken }, { env: e });
    // The role's user must set a factor up first: no options (403); a made-up challenge then.
    const challenge = options.status === 200 ? String(options.body!.challenge) : 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const stranger = await SoftAuthenticator.create();
    stranger.userHandle = 'someone-else';
    return { userId, expected: 'refused', send: async () => call('/auth/mfa/passkey', { env: e, json: { mfa_token: mfaToken, credential: await stranger.assert({ challenge }) } }) };
  },
  // A browser that has only a pending sign-in (no session at the gateway host) asks for a code
  // for an app host: it is sent to sign in, with no code.
  host_code: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'host-code');
    const jar = await pendingBrowser(email);
    const returnTo = encodeURIComponent(`https://${APP_HOST}/wiki`);
    return { userId, expected: 'sent-to-sign-in', send: () => call(`/auth/sso?return_to=${returnTo}&state=${SSO_STATE}`, { env: e, cookies: jar, headers: DOCUMENT_NAV }) };
  },
  // Such a browser has no code to exchange: one made up in the right shape, for this very user, gets nothing.
  host_code_exchange: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'host-exchange');
    const jar = await pendingBrowser(email);
    const code = `${userId}.${'A'.repeat(43)}`;
    return { userId, expected: 'refused', send: () => call(`https://${APP_HOST}/auth/sso/callback?code=${code}`, { env: e, cookies: { ...jar, '__Host-gatehouse-sso': SSO_STATE }, headers: DOCUMENT_NAV }) };
  },
  // An app's token endpoint: a code is minted only from a live session, which a pending sign-in
  // is not; a code made up in the right shape for this very user, and a refresh token so made,
  // get nothing for a registered client.
  oauth_token: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'oauth-token');
    await pendingToken(email);
    const { client, secret } = await seedClient();
    const auth = { authorization: `Basic ${btoa(`${client.id}:${secret}`)}` };
    const madeUp = `${userId}.${'A'.repeat(43)}`;
    return {
      userId,
      expected: 'refused',
      send: async () => {
        const refresh = await call('/auth/token', { env: e, headers: auth, form: { grant_type: 'refresh_token', refresh_token: madeUp } });
        expect(refresh.status).toBe(400);
        return call('/auth/token', { env: e, headers: auth, form: { grant_type: 'authorization_code', code: madeUp, redirect_uri: client.redirectUris[0]!, code_verifier: 'v'.repeat(43) } });
      },
    };
  },
  // A browser with only a pending sign-in asks an app (a first-party one: no consent page) for
  // a code: it is sent to sign in, and the app gets no code.
  oauth_authorize: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'authorize');
    const jar = await pendingBrowser(email);
    const { client } = await seedClient({ firstParty: true });
    return { userId, expected: 'sent-to-sign-in', send: () => call(authorizeUrl(client), { env: e, cookies: jar, headers: DOCUMENT_NAV }) };
  },
  // Such a browser answering a consent form (one made for the same request, with a token in the
  // right shape) gets nothing either.
  oauth_authorize_consent: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'consent');
    const jar = await pendingBrowser(email);
    const { client } = await seedClient();
    const request = authorizeUrl(client).split('?')[1]!;
    const form = { request, consent_token: `${Math.floor(Date.now() / 1000)}.${'A'.repeat(43)}`, decision: 'allow' };
    return { userId, expected: 'refused', send: () => call('/auth/authorize', { env: e, cookies: jar, headers: { ...NAV, origin: PUBLIC_URL }, form }) };
  },
  // A service's token needs a registered client: a person's address and password, presented as
  // a client's id and secret, get nothing (no token of any kind, no session).
  oauth_token_client_credentials: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'client-credentials');
    const basic = `Basic ${btoa(`${encodeURIComponent(email)}:${encodeURIComponent(GOOD_PASSWORD)}`)}`;
    return { userId, expected: 'refused', send: () => call('/auth/token', { env: e, form: { grant_type: 'client_credentials' }, headers: { authorization: basic } }) };
  },
  service_token_headers: async (kind) => {
    const { email, userId } = await passwordAccount(kind, 'service-headers');
    return { userId, expected: 'refused', send: () => call(`https://${APP_HOST}/reports`, { env: e, headers: { 'x-gatehouse-client-id': email, 'x-gatehouse-client-secret': GOOD_PASSWORD } }) };
  },
};


/** Whether the account still has an authenticator app or a passkey. */
async function hasFactor(userId: string): Promise<boolean> {
  return (await countRows('totp_factors', 'user_id = ? AND confirmed_at IS NOT NULL', userId)) + (await countRows('passkeys', 'user_id = ?', userId)) > 0;
}

async function expectNoSession(response: Response, userId: string, sessionsBefore: number, label: string) {
  expect(await response.clone().text(), label).not.toMatch(/access_token|refresh_token/);
  const cookies = setCookies(response);
  for (const name of SESSION_COOKIES) {
    const set = cookies.get(name);
    // Deleting a cookie is fine; setting one is a session.
    expect(set === undefined || set.value === '' || /max-age=0\b/i.test(set.attributes), `${label}: ${name} set`).toBe(true);
  }
  expect(await countRows('sessions', 'user_id = ?', userId), `${label}: a session started`).toBe(sessionsBefore);
}

async function expectPending(response: Response, label: string) {
  if (response.status === 303) {
    // A browser form or a provider callback: on to the second-factor page, the state in its cookie.
    expect(new URL(response.headers.get('location')!, PUBLIC_URL).pathname, label).toBe('/auth/mfa');
    expect(setCookies(response).get('__Host-gatehouse-mfa')?.value, label).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return;
  }
  expect(response.status, label).toBe(401);
  const body = (await response.clone().json()) as { error: string; mfa_token?: string };
  expect(body.error, label).toBe('mfa_required');
  expect(body.mfa_token, label).toMatch(/^[A-Za-z0-9_-]{43}$/);
}

function expectSentToSignIn(response: Response, label: string) {
  expect(response.status, label).toBe(303);
  const location = new URL(response.headers.get('location')!, PUBLIC_URL);
  expect(location.origin + location.pathname, label).toBe(`${PUBLIC_URL}/auth/login`);
  expect(location.href, label).not.toContain('code=');
}

/** No authorization code was stored for the user (the app could get none). */
async function expectNoAuthorizationCode(userId: string, label: string) {
  expect(await sessionRows('SELECT hash FROM oauth_codes', [], userId), `${label}: a code was stored`).toHaveLength(0);
}

describe('every way in asks for the second factor', () => {
  it('the list of sign-in endpoints is the one this test drives, entry for entry', () => {
    expect(Object.keys(drivers).sort()).toEqual(SIGN_IN_ENDPOINTS.map((x) => x.id).sort());
  });

  for (const endpoint of SIGN_IN_ENDPOINTS) {
    describe(`${endpoint.method} ${endpoint.path}`, () => {
      for (const kind of KINDS) {
        it(`a user with ${kind === 'totp' ? 'an authenticator app' : kind === 'passkey' ? 'a passkey' : 'a role that requires a second factor'} gets no token and no session cookie without the second factor`, async () => {
          const label = `${endpoint.id} / ${kind}`;
          const prepared = await drivers[endpoint.id](kind);
          const before = await countRows('sessions', 'user_id = ?', prepared.userId);
          const response = await prepared.send();
          if (prepared.expected === 'pending-or-wiped' && !(await hasFactor(prepared.userId))) {
            expect(response.status, `${label}: signed in once the factor was removed`).toBe(200);
            return;
          }
          await expectNoSession(response, prepared.userId, before, label);
          await expectNoAuthorizationCode(prepared.userId, label);
          if (prepared.expected === 'pending') await expectPending(response, label);
          else if (prepared.expected === 'sent-to-sign-in') expectSentToSignIn(response, label);
          else expect(response.status, label).toBeGreaterThanOrEqual(400);
        });
      }
    });
  }
});

describe('the pipeline serves only the listed sign-in endpoints', () => {
  /** An app with a sign-in route the list does not name, and one at a listed path, both mounted under AUTH_PREFIX as app-lazy.ts does. */
  function appWithRoutes() {
    const loaded = loadConfig(e);
    if (!loaded.ok) throw loaded.error;
    const config = loaded.config;
    const handler = async (c: Context<AppEnv>) => {
      const user = await findUserById(c.env.DB, c.req.header('x-user')!);
      const outcome = await signIn(c, { user: user!, amr: ['pwd'], provider: 'password', mode: 'token', returnTo: '/' });
      return c.json({ kind: outcome.kind });
    };
    const routes = new Hono<AppEnv>()
      .post('/login/sneaky', handler)
      // A listed route (`GET /callback/:provider`), matched by its registered pattern.
      .get('/callback/:provider', handler)
      // A listed path with a method the list does not name.
      .get('/login', handler);
    const app = new Hono<AppEnv>().use(configure(config));
    app.route(config.AUTH_PREFIX, new Hono<AppEnv>().route('/', routes));
    app.onError(errorHandler);
    return app;
  }

  it('a route that is not in the list is refused (500, no session), one that is passes', async () => {
    const email = uniqueEmail('unlisted');
    const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(201);
    const userId = await userIdOf(email);
    const before = await countRows('sessions', 'user_id = ?', userId);
    const app = appWithRoutes();

    const sneaky = await app.request('/auth/login/sneaky', { method: 'POST', headers: { 'x-user': userId } }, e);
    expect(sneaky.status).toBe(500);
    expect(await sneaky.json()).toEqual({ error: 'server_error', error_description: expect.any(String) });
    expect(await countRows('sessions', 'user_id = ?', userId)).toBe(before);

    const listed = await app.request('/auth/callback/anything', { headers: { 'x-user': userId } }, e);
    expect(listed.status, await listed.clone().text()).toBe(200);
    expect(await listed.json()).toEqual({ kind: 'session' });
    expect(await countRows('sessions', 'user_id = ?', userId)).toBe(before + 1);

    // The method counts too: GET /login is not a sign-in endpoint, POST /login is.
    const wrongMethod = await app.request('/auth/login', { headers: { 'x-user': userId } }, e);
    expect(wrongMethod.status).toBe(500);
    expect(await countRows('sessions', 'user_id = ?', userId)).toBe(before + 1);
  });
});

describe('the service step mints only on its listed routes', () => {
  /** Routes that mint a service token for a real client, listed and not, as app.ts mounts them. */
  function appWithServiceRoutes(client: OAuthClient) {
    const loaded = loadConfig(e);
    if (!loaded.ok) throw loaded.error;
    const config = loaded.config;
    const mint = async (c: Context<AppEnv>) => c.json({ token: (await issueServiceToken(c, client, { audience: AUDIENCE, scope: '' })).token });
    const app = new Hono<AppEnv>().use(configure(config));
    app.onError(errorHandler);
    // A root middleware is not the proxy: it is not the last route the request matched.
    app.use('*', async (c, next) => (c.req.header('x-mint-in-middleware') ? mint(c) : next()));
    // A listed path (`POST /token`) and an unlisted one, under AUTH_PREFIX.
    app.route(config.AUTH_PREFIX, new Hono<AppEnv>().post('/token', mint).post('/tokens', mint));
    // The proxy's catch-all.
    app.all('*', mint);
    return app;
  }
  const AUDIENCE = 'https://gate.example.com/api';

  it('the token endpoint and the proxy\'s catch-all mint; an unlisted route, a root middleware and a GET of the token path do not', async () => {
    const { client } = await seedClient({ grantTypes: ['client_credentials'], allowedAudiences: [AUDIENCE] });
    const app = appWithServiceRoutes(client);
    const post = { method: 'POST' };
    expect((await app.request('/auth/token', post, e)).status).toBe(200);
    expect((await app.request('/reports/x', post, e)).status).toBe(200);
    expect((await app.request('/reports/x', {}, e)).status).toBe(200);
    expect((await app.request('/auth/tokens', post, e)).status).toBe(500);
    expect((await app.request('/reports/x', { headers: { 'x-mint-in-middleware': '1' } }, e)).status).toBe(500);
    // Under AUTH_PREFIX the catch-all is not the proxy (the gateway's own paths are never proxied).
    expect((await app.request('/auth/elsewhere', {}, e)).status).toBe(500);
  });

  it('a client that may not have the token is refused by the pipeline itself, whatever the route checked', async () => {
    for (const overrides of [{ grantTypes: ['authorization_code' as const] }, { allowedAudiences: ['https://elsewhere.example.com'] }, { disabledAt: 1 }, { kind: 'public' as const, authMethod: 'none' as const }]) {
      const { client } = await seedClient({ grantTypes: ['client_credentials'], allowedAudiences: [AUDIENCE], ...overrides });
      const r = await appWithServiceRoutes(client).request('/auth/token', { method: 'POST' }, e);
      expect(r.status, JSON.stringify(overrides)).toBe(400);
      expect(await r.json()).toMatchObject({ error: 'unauthorized_client' });
    }
  });
});

describe('the pipeline itself refuses, whatever the route checked', () => {
  function app() {
    const loaded = loadConfig(e);
    if (!loaded.ok) throw loaded.error;
    const config = loaded.config;
    const routes = new Hono<AppEnv>()
      .post('/login', async (c) => {
        const user = await findUserById(c.env.DB, c.req.header('x-user')!);
        const outcome = await signIn(c, { user: user!, amr: ['pwd'], provider: 'password', mode: 'token', returnTo: '/' });
        return c.json({ kind: outcome.kind });
      })
      // The second step, called as a route might after a factor check that let it through.
      .post('/mfa', async (c) => {
        const pending = await readPendingSignIn(c, c.req.header('x-mfa-token'));
        const outcome = await completeSignIn(c, pending, ['otp']);
        return c.json({ kind: outcome.kind });
      });
    const a = new Hono<AppEnv>().use(configure(config));
    a.route(config.AUTH_PREFIX, routes);
    a.onError(errorHandler);
    return a;
  }

  it('a disabled account: 403, no session', async () => {
    const email = uniqueEmail('disabled');
    expect((await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } })).status).toBe(201);
    const userId = await userIdOf(email);
    await env.DB.prepare('UPDATE users SET disabled_at = 1 WHERE id = ?').bind(userId).run();
    const before = await countRows('sessions', 'user_id = ?', userId);
    const r = await app().request('/auth/login', { method: 'POST', headers: { 'x-user': userId } }, e);
    expect(r.status).toBe(403);
    expect(await countRows('sessions', 'user_id = ?', userId)).toBe(before);
  });

  it('a pending state is completed only once the account has a second factor (a required role must set one up first)', async () => {
    const { email, userId } = await passwordAccount('role', 'enrol-first');
    const mfaToken = await pendingToken(email);
    const before = await countRows('sessions', 'user_id = ?', userId);
    const r = await app().request('/auth/mfa', { method: 'POST', headers: { 'x-mfa-token': mfaToken } }, e);
    expect(r.status).toBe(403);
    expect(await countRows('sessions', 'user_id = ?', userId)).toBe(before);
  });
});
