/**
 * A route policy is checked when the configuration loads (the rules on an isolate's first
 * request, before anything else runs): every mistake is a `configuration_error` naming the
 * route, the rule (allow[i] / deny[i] and the nested path) and the field, and a policy that
 * could never allow anyone is refused.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load';
import { routePolicies } from '../../../src/config/route-policies';
import { call, makeEnv } from '../support/helpers';

const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: '{"keys":[]}', OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'gatehouse',
  // A route deciding on groups needs it (each session keeps its provider grant, sealed with it).
  TOKEN_ENCRYPTION_KEY: 'k'.repeat(20) + 'an-encryption-secret-for-tests' };

function routes(policy: unknown, extra: Record<string, unknown> = {}) {
  return JSON.stringify([{ path: '/ops', origin: 'https://ops.example', auth: 'required', policy, ...extra }]);
}

/** Null if the configuration and its route policies load; else the ConfigError, which must name ROUTES. */
async function loadError(settings: Record<string, unknown>): Promise<string | null> {
  const r = parseConfig({ ...base, ...settings });
  let error: unknown = r.ok ? null : r.error;
  if (r.ok) {
    try {
      await routePolicies(r.config);
    } catch (e) {
      error = e;
    }
  }
  if (error === null) return null;
  if (!(error instanceof ConfigError)) throw error;
  expect(error.setting).toBe('ROUTES');
  return error.message;
}

async function refusal(settings: Record<string, unknown>): Promise<string> {
  const message = await loadError(settings);
  if (message === null) throw new Error('the configuration was accepted');
  return message;
}

describe('policy mistakes refused at start-up', () => {
  it.each([
    ['an unknown fact', { allow: [{ grops: ['eng'] }] }, /route "\/ops": policy allow\[0\]\.grops: unknown fact/],
    ['an unknown fact nested', { allow: [{ any: [{ roles: ['a'] }, { not: { colour: ['red'] } }] }] }, /policy allow\[0\]\.any\[1\]\.not\.colour: unknown fact/],
    ['an unknown policy field', { allow: [{ roles: ['a'] }], permit: [] }, /policy permit: unknown policy field/],
    ['an empty value list', { allow: [{ roles: ['a'] }], deny: [{ groups: [] }] }, /policy deny\[0\]\.groups: is an empty list/],
    ['a value that is not a list', { allow: [{ method: 'GET' }] }, /policy allow\[0\]\.method: must be a list/],
    ['a value of the wrong type', { allow: [{ roles: ['ok', 7] }] }, /policy allow\[0\]\.roles\[1\]: must be a non-empty string/],
    ['a bad CIDR range', { allow: [{ ip: ['10.0.0.0/8', '300.1.1.1/8'] }] }, /policy allow\[0\]\.ip\[1\]: "300\.1\.1\.1" is not an IPv4 or IPv6 address/],
    ['a CIDR with host bits', { allow: [{ ip: ['10.0.0.1/8'] }] }, /policy allow\[0\]\.ip\[0\]: host bits are set/],
    ['a CIDR prefix too long', { allow: [{ ip: ['2001:db8::/129'] }] }, /policy allow\[0\]\.ip\[0\]: the prefix length/],
    ['a bad glob', { allow: [{ path: ['/reports/*.pdf'] }] }, /policy allow\[0\]\.path\[0\]: "\*\.pdf"/],
    ['a glob not below the route', { allow: [{ path: ['reports'] }] }, /policy allow\[0\]\.path\[0\]: must be a path glob/],
    ['a bad country code', { allow: [{ roles: ['a'] }], deny: [{ country: ['UK'] }] }, /policy deny\[0\]\.country\[0\]: "UK" is not an ISO 3166-1/],
    ['an unknown amr', { allow: [{ amr: ['2fa'] }] }, /policy allow\[0\]\.amr\[0\]: "2fa" is not an RFC 8176 method/],
    ['an unknown caller', { allow: [{ caller: ['robot'] }] }, /policy allow\[0\]\.caller\[0\]: "robot" is not a kind of caller \(person, service\)/],
    ['a client that is not a client id', { allow: [{ caller: ['service'], client: ['cli x'] }] }, /policy allow\[0\]\.client\[0\]: "cli x" is not a client id/],
    ['an empty client list', { allow: [{ client: [] }] }, /policy allow\[0\]\.client: is an empty list/],
    ['a bad sign-in age', { allow: [{ signed_in_within: 0 }] }, /policy allow\[0\]\.signed_in_within: must be a whole number of seconds/],
    ['an empty condition', { allow: [{}] }, /policy allow\[0\]: is empty/],
    ['a bad external binding', { allow: [{ roles: ['a'] }], external: 'https://decide.example' }, /policy external: must name a service binding/],
    ['not over a list', { allow: [{ not: [{ roles: ['a'] }] }] }, /policy allow\[0\]\.not: takes one condition/],
  ])('%s', async (_name, policy, message) => {
    expect(await refusal({ ROUTES: routes(policy) })).toMatch(message);
  });
});

describe('policies that could never allow anyone are refused', () => {
  it.each([
    ['no allow rule', { deny: [{ country: ['RU'] }] }, /policy allow: lists no condition/],
    ['an empty allow list', { allow: [] }, /policy allow: lists no condition/],
    ['an allow rule that negates an always-true condition', { allow: [{ not: { caller: ['person', 'service'] } }] }, /policy allow\[0\]: can never hold/],
    ['an allow rule that needs something never true', { allow: [{ roles: ['a'], any: [{ not: { caller: ['service', 'person'] } }] }] }, /policy allow\[0\]: can never hold/],
    ['a deny rule that always holds', { allow: [{ roles: ['a'] }], deny: [{ caller: ['person', 'service'] }] }, /policy deny\[0\]: holds for every request/],
    [
      'an allow rule identical to a deny rule (in another order)',
      { allow: [{ groups: ['eng', 'ops'], method: ['GET'] }], deny: [{ method: ['get'], groups: ['ops', 'eng'] }] },
      /policy allow\[0\]: is the same condition as deny\[0\]/,
    ],
    ['an allow shorthand with every list empty', undefined, /route "\/ops": allow: lists no email, domain or role/],
  ])('%s', async (_name, policy, message) => {
    const settings = policy === undefined ? { ROUTES: JSON.stringify([{ path: '/ops', origin: 'https://ops.example', auth: 'required', allow: { emails: [], roles: [] } }]) } : { ROUTES: routes(policy) };
    expect(await refusal(settings)).toMatch(message);
  });
});

describe('where a policy may stand', () => {
  it('needs auth = "required", and not beside the allow shorthand', async () => {
    expect(await refusal({ ROUTES: routes({ allow: [{ roles: ['a'] }] }, { auth: 'optional' }) })).toMatch(/policy needs auth = "required"/);
    expect(await refusal({ ROUTES: routes({ allow: [{ roles: ['a'] }] }, { allow: { roles: ['a'] } }) })).toMatch(/use either allow .* or policy/);
  });

  it('upstream_authorization takes only "assertion", and not on a public route', async () => {
    const route = (extra: Record<string, unknown>) => JSON.stringify([{ path: '/api', origin: 'https://api.example', ...extra }]);
    expect(await refusal({ ROUTES: route({ auth: 'required', upstream_authorization: 'token' }) })).toMatch(/upstream_authorization must be "assertion"/);
    expect(await refusal({ ROUTES: route({ auth: 'public', upstream_authorization: 'assertion' }) })).toMatch(/upstream_authorization needs auth/);
    expect(await loadError({ ROUTES: route({ auth: 'optional', upstream_authorization: 'assertion' }) })).toBeNull();
  });

  it('a groups condition needs a configured provider that supplies groups', async () => {
    const grouped = routes({ allow: [{ roles: ['a'] }, { any: [{ groups: ['eng'] }] }] });
    const noGroups = { OIDC_ISSUER: undefined, OIDC_CLIENT_ID: undefined, ROUTES: grouped };
    expect(await refusal(noGroups)).toMatch(/route "\/ops": policy allow\[1\]\.any\[0\]\.groups: no configured sign-in provider supplies groups/);
    // Google does not supply groups; GitHub, GitLab and OpenID Connect do.
    expect(await loadError({ ...noGroups, GOOGLE_CLIENT_ID: 'g', GOOGLE_CLIENT_SECRET: 's' })).not.toBeNull();
    expect(await loadError({ ...noGroups, GITHUB_CLIENT_ID: 'g', GITHUB_CLIENT_SECRET: 's' })).toBeNull();
    expect(await loadError({ ...noGroups, GITLAB_CLIENT_ID: 'g', GITLAB_CLIENT_SECRET: 's' })).toBeNull();
    expect(await loadError({ ROUTES: grouped })).toBeNull();
  });

  it('a good policy with every fact loads', async () => {
    const policy = {
      allow: [
        { groups: ['eng'], method: ['GET', 'HEAD'] },
        { email: ['dana@example.com'] },
        { domain: ['example.com'], amr: ['mfa'], signed_in_within: 3600 },
        { all: [{ roles: ['ops'] }, { path: ['/deploy/**', '/*/status'] }], caller: ['person'] },
      ],
      deny: [{ country: ['RU', 'T1'] }, { not: { ip: ['192.0.2.0/24', '2001:db8::/32', '::ffff:198.51.100.0/120'] } }],
      external: 'service:DECIDER',
    };
    expect(await loadError({ ROUTES: routes(policy) })).toBeNull();
  });

  it('every request fails closed with configuration_error naming ROUTES and the rule', async () => {
    const env = makeEnv({ ROUTES: routes({ allow: [{ grops: ['eng'] }] }) });
    for (const path of ['/auth/health', '/ops/x']) {
      const r = await call(path, { env });
      expect(r.status).toBe(500);
      const body = (await r.json()) as { error: string; setting: string; error_description: string };
      expect(body).toMatchObject({ error: 'configuration_error', setting: 'ROUTES' });
      expect(body.error_description).toContain('route "/ops": policy allow[0].grops: unknown fact');
    }
  });
});

describe('how deep conditions may nest', () => {
  /** ROUTES with an allow rule nested `depth` times in `not = { not = … }`, written as text (no recursion to build it). */
  const nested = (depth: number) =>
    `[{"path":"/ops","origin":"https://ops.example","auth":"required","policy":{"allow":[${'{"not":'.repeat(depth)}{"roles":["a"]}${'}'.repeat(depth)}]}}]`;

  it('a policy nested beyond any real need is a configuration_error naming the rule, not a stack overflow', async () => {
    expect(await loadError({ ROUTES: nested(16) })).toBeNull();
    expect(await refusal({ ROUTES: nested(17) })).toMatch(/route "\/ops": policy allow\[0\](\.not){17}: conditions nest more than 16 deep/);
    expect(await refusal({ ROUTES: nested(200_000) })).toMatch(/conditions nest more than 16 deep/);
  });
});
