/**
 * Attacks on the OAuth callback: RFC 9207 `iss`, https-only
 * issuers and no redirects at the token endpoint, emails never shortened nor folded, one alert
 * per replayed flow, the `__Host-` flow cookie, `azp` and `iat`, one deadline per callback.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { call, countRows, makeEnv, setCookies, stateSnapshot, type TestEnv } from '../support/helpers';
import { fakeHost, FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { callback, FLOW_COOKIE, signIn, startLogin } from '../support/oauth-helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

beforeAll(() => {
  installFakeNetwork();
});

let n = 0;
const uniq = () => `${++n}-${Date.now().toString(36)}`;

/** A fresh provider (its own discovery cache entry) and an env using it. */
async function provider(settings: Record<string, unknown> = {}): Promise<{ idp: FakeOidcProvider; e: TestEnv }> {
  const idp = await FakeOidcProvider.create();
  idp.user = { sub: `h-${uniq()}`, email: `h-${uniq()}@example.com`, email_verified: true, name: 'H' };
  return { idp, e: makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, ...settings }) };
}

async function expectRefusedPage(r: Response, status: number, before: Awaited<ReturnType<typeof stateSnapshot>>): Promise<string> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/text\/html/);
  expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  expect(await stateSnapshot()).toEqual(before);
  return r.text();
}

describe('RFC 9207 issuer identification on the callback', () => {
  it('refuses an iss that names another issuer, before the code is sent anywhere', async () => {
    const { idp, e } = await provider();
    idp.sendIss = 'https://attacker.example.test';
    const before = await stateSnapshot();
    const calls = idp.tokenCalls;
    const text = await expectRefusedPage(await signIn('oidc', idp, e), 400, before);
    expect(text).toContain('names a different provider');
    expect(idp.tokenCalls).toBe(calls);
    expect(await countRows('auth_events', "event = 'oauth_login' AND detail LIKE '%issuer_mismatch%'")).toBeGreaterThanOrEqual(1);
  });

  it('requires iss when discovery says authorization_response_iss_parameter_supported, and accepts the right one', async () => {
    const { idp, e } = await provider();
    idp.issParameterSupported = true;
    const before = await stateSnapshot();
    const text = await expectRefusedPage(await signIn('oidc', idp, e), 400, before);
    expect(text).toContain('does not say which provider');
    expect(await countRows('auth_events', "event = 'oauth_login' AND detail LIKE '%issuer_missing%'")).toBeGreaterThanOrEqual(1);
    idp.sendIss = 'own';
    expect((await signIn('oidc', idp, e)).status).toBe(303);
  });

  it('accepts a matching iss from a provider that does not advertise it', async () => {
    const { idp, e } = await provider();
    idp.sendIss = 'own';
    expect((await signIn('oidc', idp, e)).status).toBe(303);
  });
});

describe('https issuers only, and no redirects at the token endpoint', () => {
  it('refuses an http:// OIDC_ISSUER outside development (configuration_error naming it)', async () => {
    const e = makeEnv({ OIDC_ISSUER: 'http://idp.example.test', OIDC_CLIENT_ID: 'c', OIDC_CLIENT_SECRET: 's' });
    const r = await call('/auth/login', { env: e, headers: { accept: 'application/json' } });
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ error: 'configuration_error', setting: 'OIDC_ISSUER' });
    const dev = makeEnv({ ENVIRONMENT: 'development', OIDC_ISSUER: 'http://idp.example.test', OIDC_CLIENT_ID: 'c', OIDC_CLIENT_SECRET: 's' });
    expect((await call('/auth/login', { env: dev })).status).toBe(200);
  });

  it('a redirect from the token endpoint is a provider fault (502): code and verifier never reach its target', async () => {
    const { idp, e } = await provider();
    const collector = `https://collector-${uniq()}.example.test`;
    fakeHost(collector, () => new Response(JSON.stringify({ access_token: 'stolen', token_type: 'Bearer' }), { headers: { 'content-type': 'application/json' } }));
    idp.tokenRedirect = { status: 307, location: `${collector}/steal` };
    const before = await stateSnapshot();
    const from = requests.length;
    const text = await expectRefusedPage(await signIn('oidc', idp, e), 502, before);
    expect(text).toContain('try again');
    const sent = requests.slice(from);
    expect(sent.some((q) => q.url === `${idp.issuer}/token`)).toBe(true);
    expect(sent.filter((q) => q.url.startsWith(collector))).toEqual([]);
  });
});

describe('a provider email is never shortened', () => {
  it('refuses a verified 241-character local part at corp.example.attacker.test (it would be cut to …@corp.example)', async () => {
    for (const where of ['id_token', 'userinfo'] as const) {
      const { idp, e } = await provider({ ALLOWED_EMAIL_DOMAINS: 'corp.example' });
      const local = `${where}-${uniq()}-`.padEnd(241, 'a');
      idp.user = { sub: `long-${uniq()}`, email: `${local}@corp.example.attacker.test`, email_verified: true };
      idp.emailOnlyInUserinfo = where === 'userinfo';
      const before = await stateSnapshot();
      const text = await expectRefusedPage(await signIn('oidc', idp, e), 403, before);
      expect(text).toContain('longer than 254 characters');
      expect(await countRows('users', 'email = ?', `${local}@corp.example`)).toBe(0);
    }
  });
});

describe('no Unicode case folding into someone else’s address', () => {
  it('a verified provider email with the Kelvin sign does not open kevin’s account', async () => {
    const { idp, e } = await provider();
    const id = uniq();
    idp.user = { sub: `kevin-${id}`, email: `kevin-${id}@example.com`, email_verified: true };
    expect((await signIn('oidc', idp, e)).status).toBe(303);
    idp.user = { sub: `kelvin-${id}`, email: `\u212Aevin-${id}@example.com`, email_verified: true };
    const before = await stateSnapshot();
    const text = await expectRefusedPage(await signIn('oidc', idp, e), 403, before);
    expect(text).toContain('outside ASCII');
    expect(await countRows('identities', 'subject = ?', `kelvin-${id}`)).toBe(0);
  });
});

describe('one flow cookie raises at most one alert', () => {
  const hook = 'https://hooks.example.test';
  const posts = (from: number) => requests.slice(from).filter((q) => q.url.startsWith(hook));

  it('replaying a flow cookie with made-up states records failures, never an alert', async () => {
    fakeHost(hook, () => new Response(null, { status: 204 }));
    const { idp, e } = await provider({ ALERT_WEBHOOK_URL: `${hook}/alert` });
    const started = await startLogin('oidc', e);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const from = requests.length;
    const security = await countRows('auth_events', "event = 'oauth_login' AND outcome = 'security'");
    for (let i = 0; i < 5; i += 1) {
      const forged = consent.callback.replace(/state=[^&]+/, `state=forged${i}${'A'.repeat(37)}`);
      expect((await callback(forged, e, started.flowCookie)).status).toBe(400);
    }
    expect(posts(from)).toEqual([]);
    expect(await countRows('auth_events', "event = 'oauth_login' AND outcome = 'security'")).toBe(security);
  });

  it('replaying a used state N times alerts once', async () => {
    fakeHost(hook, () => new Response(null, { status: 204 }));
    const { idp, e } = await provider({ ALERT_WEBHOOK_URL: `${hook}/alert` });
    const started = await startLogin('oidc', e);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    expect((await callback(consent, e, started.flowCookie)).status).toBe(303);
    const from = requests.length;
    const security = await countRows('auth_events', "event = 'oauth_login' AND outcome = 'security' AND detail LIKE '%state_replayed%'");
    for (let i = 0; i < 4; i += 1) expect((await callback(consent, e, started.flowCookie)).status).toBe(400);
    expect(posts(from)).toHaveLength(1);
    expect(await countRows('auth_events', "event = 'oauth_login' AND outcome = 'security' AND detail LIKE '%state_replayed%'")).toBe(security + 1);
    expect(await countRows('auth_events', "event = 'oauth_login' AND outcome = 'failure' AND detail LIKE '%state_replayed%'")).toBeGreaterThanOrEqual(3);
  });
});

describe('the flow cookie is __Host- (Path=/), which no sibling subdomain can plant', () => {
  it('is set as __Host-gatehouse-oauth with Path=/ and no Domain', async () => {
    const { e } = await provider();
    const started = await startLogin('oidc', e);
    const cookie = setCookies(started.response).get('__Host-gatehouse-oauth');
    expect(cookie?.attributes).toMatch(/Path=\/(;|$)/);
    expect(cookie?.attributes).toMatch(/Secure/);
    expect(cookie?.attributes).toMatch(/HttpOnly/);
    expect(cookie?.attributes).not.toMatch(/Domain=/i);
  });

  it('a flow cookie under the __Secure- name (which Domain= can plant from a sibling) is ignored', async () => {
    const { idp, e } = await provider();
    const started = await startLogin('oidc', e);
    const consent = await idp.authorize(started.location.href, idp.authorizeUrl);
    const before = await stateSnapshot();
    const r = await call(consent.callback, { env: e, cookies: { '__Secure-gatehouse-oauth': started.flowCookie }, headers: { accept: 'text/html' } });
    expect(await expectRefusedPage(r, 400, before)).toContain('expired or was already used');
  });

  it('the proxy drops an origin’s Set-Cookie for the flow cookie, and never forwards it to an origin', async () => {
    const origin = recordingOrigin(() => {
      const headers = new Headers();
      headers.append('set-cookie', `${FLOW_COOKIE}=planted; Path=/; Secure; HttpOnly; SameSite=Lax`);
      headers.append('set-cookie', 'app=1; Path=/');
      return new Response('ok', { headers });
    });
    const e = proxyEnv([{ path: '/pub', origin: 'service:ORIGIN', auth: 'public' }], { ORIGIN: origin });
    const r = await call('/pub/x', { env: e, cookies: { [FLOW_COOKIE]: 'in-flight', app: '1' } });
    expect(r.status).toBe(200);
    expect(r.headers.getSetCookie()).toEqual(['app=1; Path=/']);
    expect(origin.seen[0]!.headers.cookie).toBe('app=1');
  });
});

describe('azp and iat of the ID token', () => {
  const cases: [string, (claims: Record<string, unknown>) => void][] = [
    ['an azp naming another client (single audience)', (c) => void (c.azp = 'someone-else')],
    ['an iat two hours old (exp still ahead)', (c) => void (c.iat = Math.floor(Date.now() / 1000) - 7200)],
    ['an iat ten minutes in the future', (c) => void (c.iat = Math.floor(Date.now() / 1000) + 600)],
  ];
  for (const [name, tamper] of cases) {
    it(`refuses ${name}`, async () => {
      const { idp, e } = await provider();
      idp.tamper = (claims) => tamper(claims);
      const before = await stateSnapshot();
      expect(await expectRefusedPage(await signIn('oidc', idp, e), 400, before)).toContain('did not verify');
    });
  }

  it('accepts an azp that names us', async () => {
    const { idp, e } = await provider();
    idp.tamper = (claims) => void (claims.azp = idp.clientId);
    expect((await signIn('oidc', idp, e)).status).toBe(303);
  });
});

describe('one deadline for the whole callback', () => {
  it('a provider slow at every step (each step under 5 s, together over) gets a 503 page', { timeout: 30_000 }, async () => {
    const { idp, e } = await provider();
    // 3 s at the token endpoint and 3 s at the key set: each under a per-call 5 s, 6 s together.
    idp.delays = { token: 3_000, jwks: 3_000 };
    const before = await stateSnapshot();
    const r = await signIn('oidc', idp, e);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(await expectRefusedPage(r, 503, before)).toContain('did not answer in time');
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM identities WHERE subject = ?').bind(idp.user.sub).first('n')).toBe(0);
  });
});
