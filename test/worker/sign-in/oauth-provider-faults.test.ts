/**
 * Provider faults during the callback: down, slow, garbage, unreachable, at the token
 * endpoint, the key set and userinfo. Each gives a 502/503 page and no session.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeEnv, setCookies, stateSnapshot, type TestEnv } from '../support/helpers';
import { FakeGitHub, FakeOidcProvider, installFakeNetwork, whenHanging, type Fault } from '../support/oauth-fakes';
import { callback, startLogin } from '../support/oauth-helpers';

beforeAll(() => {
  installFakeNetwork();
});

afterEach(() => {
  whenHanging(undefined);
  vi.restoreAllMocks();
});

/**
 * The provider deadline without its five seconds of waiting, for the callback that follows:
 * each `AbortSignal.timeout` (the gateway's deadline, jose's key-set timeout) gives a signal of
 * ours, and once the fake network holds a request it will never answer, time jumps to the first
 * of them to expire, which fires as a timeout does (the later ones would fire after the answer,
 * as in real time). Fills `asked` with the durations asked for, so that the test still pins the
 * deadline itself.
 */
function deadlinePassesWhenHanging(asked: number[]): void {
  const timers: { expires: number; timer: AbortController }[] = [];
  vi.spyOn(AbortSignal, 'timeout').mockImplementation((ms: number) => {
    asked.push(ms);
    const timer = new AbortController();
    timers.push({ expires: performance.now() + ms, timer });
    return timer.signal;
  });
  whenHanging(() => {
    const first = timers.filter((t) => !t.timer.signal.aborted).sort((a, b) => a.expires - b.expires)[0];
    first?.timer.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  });
}

let n = 0;
/** A provider sign-in whose callback meets the fault; `beforeCallback` runs once the user has consented. */
async function expectFault(provider: 'oidc' | 'github', fake: FakeOidcProvider | FakeGitHub, e: TestEnv, status: 502 | 503, beforeCallback?: () => void) {
  n += 1;
  fake.user = { sub: `fault-${n}-${Date.now()}`, email: `fault-${n}-${Date.now()}@example.com`, email_verified: true };
  const before = await stateSnapshot();
  const started = await startLogin(provider, e);
  const consent = await fake.authorize(started.location.href, fake.authorizeUrl);
  beforeCallback?.();
  const r = await callback(consent, e, started.flowCookie);
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/text\/html/);
  if (status === 503) expect(r.headers.get('retry-after')).toBe('5');
  expect(setCookies(r).has('__Host-gatehouse')).toBe(false);
  const text = await r.text();
  expect(text).toContain('try again');
  // The page's own stylesheet is the kit's (its class names include `stack`): what it says is the rest.
  expect(text.replace(/<style[^>]*>[\s\S]*?<\/style>/g, '')).not.toMatch(/idp-\d+\.example\.test|api\.github\.com|TypeError|stack/);
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

  it('a token endpoint that never answers times out -> 503', async () => {
    idp.faults = { token: 'hang' };
    const deadlines: number[] = [];
    try {
      await expectFault('oidc', idp, e, 503, () => deadlinePassesWhenHanging(deadlines));
    } finally {
      idp.faults = {};
    }
    expect(new Set(deadlines)).toEqual(new Set([5_000]));
  });

  it('a key set that never answers times out -> 503', async () => {
    const slow = await FakeOidcProvider.create();
    const slowEnv = makeEnv({ OIDC_ISSUER: slow.issuer, OIDC_CLIENT_ID: slow.clientId, OIDC_CLIENT_SECRET: slow.clientSecret });
    slow.faults = { jwks: 'hang' };
    const deadlines: number[] = [];
    await expectFault('oidc', slow, slowEnv, 503, () => deadlinePassesWhenHanging(deadlines));
    expect(new Set(deadlines)).toEqual(new Set([5_000]));
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

  it('an API that never answers times out -> 503', async () => {
    gh.faults = { api: 'hang' };
    const deadlines: number[] = [];
    try {
      await expectFault('github', gh, e, 503, () => deadlinePassesWhenHanging(deadlines));
    } finally {
      gh.faults = {};
    }
    expect(new Set(deadlines)).toEqual(new Set([5_000]));
  });
});
