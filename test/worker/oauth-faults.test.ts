/**
 * Provider faults during the callback: down, slow, garbage, unreachable, at the token
 * endpoint, the key set and userinfo. Each gives a 502/503 page and no session.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, setCookies, stateSnapshot, type TestEnv } from './helpers';
import { FakeGitHub, FakeOidcProvider, installFakeNetwork, type Fault } from './oauth-fakes';
import { signIn } from './oauth-helpers';

beforeAll(() => {
  installFakeNetwork();
});

let n = 0;
async function expectFault(provider: 'oidc' | 'github', fake: FakeOidcProvider | FakeGitHub, e: TestEnv, status: 502 | 503) {
  n += 1;
  fake.user = { sub: `fault-${n}-${Date.now()}`, email: `fault-${n}-${Date.now()}@example.com`, email_verified: true };
  const before = await stateSnapshot();
  const r = await signIn(provider, fake, e);
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/text\/html/);
  if (status === 503) expect(r.headers.get('retry-after')).toBe('5');
  expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  const text = await r.text();
  expect(text).toContain('try again');
  expect(text).not.toMatch(/idp-\d+\.example\.test|api\.github\.com|TypeError|stack/);
  expect(await stateSnapshot()).toEqual(before);
}

describe('OpenID Connect provider faults', () => {
  let idp: FakeOidcProvider;
  let e: TestEnv;
  beforeAll(async () => {
    idp = await FakeOidcProvider.create();
    e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
  });

  const cases: [keyof FakeOidcProvider['faults'], Fault, 502 | 503][] = [
    ['token', 'down', 503],
    ['token', 'garbage', 502],
    ['token', 'refuse-connection', 503],
    ['jwks', 'down', 503],
    ['jwks', 'garbage', 502],
    ['jwks', 'refuse-connection', 503],
  ];
  for (const [endpoint, fault, status] of cases) {
    it(`${endpoint} ${fault} -> ${status}`, async () => {
      idp.faults = { [endpoint]: fault };
      try {
        await expectFault('oidc', idp, e, status);
      } finally {
        idp.faults = {};
      }
    });
  }

  it('userinfo down when the ID token lacks the email -> 503', async () => {
    idp.emailOnlyInUserinfo = true;
    idp.faults = { userinfo: 'down' };
    try {
      await expectFault('oidc', idp, e, 503);
    } finally {
      idp.emailOnlyInUserinfo = false;
      idp.faults = {};
    }
  });

  it('a token endpoint that never answers times out -> 503', { timeout: 20_000 }, async () => {
    idp.faults = { token: 'hang' };
    try {
      await expectFault('oidc', idp, e, 503);
    } finally {
      idp.faults = {};
    }
  });

  it('a key set that never answers times out -> 503', { timeout: 20_000 }, async () => {
    const slow = await FakeOidcProvider.create();
    const slowEnv = makeEnv({ OIDC_ISSUER: slow.issuer, OIDC_CLIENT_ID: slow.clientId, OIDC_CLIENT_SECRET: slow.clientSecret });
    slow.faults = { jwks: 'hang' };
    await expectFault('oidc', slow, slowEnv, 503);
  });
});

describe('GitHub faults', () => {
  let gh: FakeGitHub;
  let e: TestEnv;
  beforeAll(() => {
    gh = FakeGitHub.create();
    e = makeEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret });
  });

  it('API down -> 503, API garbage -> 502, token endpoint down -> 503', async () => {
    gh.faults = { api: 'down' };
    await expectFault('github', gh, e, 503);
    gh.faults = { api: 'garbage' };
    await expectFault('github', gh, e, 502);
    gh.faults = { token: 'down' };
    await expectFault('github', gh, e, 503);
    gh.faults = { api: 'rate-limited' };
    await expectFault('github', gh, e, 503);
    gh.faults = {};
  });

  it('an API that never answers times out -> 503', { timeout: 20_000 }, async () => {
    gh.faults = { api: 'hang' };
    try {
      await expectFault('github', gh, e, 503);
    } finally {
      gh.faults = {};
    }
  });
});
