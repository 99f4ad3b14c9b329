/**
 * Where groups come from at a provider sign-in: the generic OpenID Connect provider's groups
 * claim (OIDC_GROUPS_CLAIM, from the ID token, else userinfo), GitLab's userinfo `groups`,
 * GitHub's organisations and teams (asking `read:org` only when a route decides on groups), and
 * the bounds every provider's names pass through. Google and password sign-ins carry none.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { providersWithGroups } from '../../../src/config/providers-with-groups';
import { MAX_GROUP_LENGTH, MAX_GROUPS, MAX_GROUPS_BYTES } from '../../../src/providers/groups';
import { bearer, call, GOOD_PASSWORD, makeEnv, setCookies, uniqueEmail, type TestEnv } from '../support/helpers';
import { mfaEnv, NAV, totpCode, userWithTotp } from '../support/second-factor-helpers';
import { FakeGitHub, FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { sessionCookies, signIn, startLogin } from '../support/oauth-helpers';
import { recordingOrigin } from '../support/proxy-helpers';

const KEY = 'k'.repeat(20) + 'an-encryption-secret-for-tests';
const GROUP_ROUTE = [{ path: '/eng', origin: 'https://eng.internal.example', auth: 'required', allow: { groups: ['eng'] } }];

beforeAll(() => {
  installFakeNetwork();
});

let n = 0;

// GitLab's fake answers at the one https://gitlab.com, whose keys the gateway caches: one for the file.
let gitlabFake: FakeOidcProvider | undefined;
const theGitLab = async () => (gitlabFake ??= await FakeOidcProvider.createGitLab());
const someone = (groups?: unknown, extra?: Record<string, unknown>) => {
  n += 1;
  const id = `grp-${n}-${Date.now()}`;
  return { sub: id, email: `${id}@example.com`, email_verified: true, name: 'Group Person', groups, extra };
};

/** Signs in through `providerId` and returns the access token's groups. */
async function groupsAfterSignIn(providerId: string, idp: FakeOidcProvider | FakeGitHub, e: TestEnv): Promise<unknown> {
  const r = await signIn(providerId, idp, e);
  expect(r.status, await r.clone().text()).toBe(303);
  return decodeJwt(sessionCookies(r).access).groups;
}

describe('OpenID Connect groups', () => {
  it('the generic provider reads the `groups` claim of the ID token', async () => {
    const idp = await FakeOidcProvider.create();
    const e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    idp.user = someone(['eng', 'ops']);
    const from = requests.length;
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual(['eng', 'ops']);
    // The ID token had them: userinfo was not asked.
    expect(requests.slice(from).some((q) => q.url.endsWith('/userinfo'))).toBe(false);
  });

  it('OIDC_GROUPS_CLAIM names another claim; the `groups` claim is then ignored', async () => {
    const idp = await FakeOidcProvider.create();
    const e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, OIDC_GROUPS_CLAIM: 'https://example.com/roles' });
    idp.user = someone(['not-these'], { 'https://example.com/roles': ['admins', 'eng'] });
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual(['admins', 'eng']);
  });

  it('a claim the ID token lacks is read from userinfo, about the same subject only', async () => {
    const idp = await FakeOidcProvider.create();
    const e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    idp.groupsOnlyInUserinfo = true;
    idp.user = someone(['from-userinfo']);
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual(['from-userinfo']);
    idp.user = someone(['from-userinfo']);
    idp.userinfoSub = 'somebody-else';
    const r = await signIn('oidc', idp, e);
    idp.userinfoSub = null;
    expect(r.status).toBe(400);
  });

  it('GitLab: `groups` from userinfo (direct and inherited, as `gitlab:path`), not the ID token’s `groups_direct`', async () => {
    const idp = await theGitLab();
    const e = makeEnv({ GITLAB_CLIENT_ID: idp.clientId, GITLAB_CLIENT_SECRET: idp.clientSecret });
    idp.user = someone(['acme', 'acme/platform']);
    idp.tamper = (claims) => {
      claims.groups_direct = ['acme/platform'];
    };
    expect(await groupsAfterSignIn('gitlab', idp, e)).toEqual(['gitlab:acme', 'gitlab:acme/platform']);
  });

  it('bad claim values: only strings count, empty, over-long and control-character names are dropped, the list is capped', async () => {
    const idp = await FakeOidcProvider.create();
    const e = makeEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    const long = 'x'.repeat(MAX_GROUP_LENGTH + 1);
    idp.user = someone(['ok', 7, null, { name: 'obj' }, ['nested'], '', long, 'tab\there', 'line\u2028sep', 'lone\ud800', 'ok', 'a,b']);
    // Compared as JSON text, which escapes a lone surrogate (a failure report could not carry one raw).
    expect(JSON.stringify(await groupsAfterSignIn('oidc', idp, e))).toBe(JSON.stringify(['ok', 'a,b']));
    // Not a list at all: no groups (and no error).
    idp.user = someone('eng');
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual([]);
    // Too many: the first MAX_GROUPS are kept.
    idp.user = someone(Array.from({ length: MAX_GROUPS + 20 }, (_, i) => `g${i}`));
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual(Array.from({ length: MAX_GROUPS }, (_, i) => `g${i}`));
    // Too long together: names are kept while their JSON (quotes and a separator each) stays
    // within MAX_GROUPS_BYTES of UTF-8. 128 ASCII characters cost 131 bytes: 7 fit in 1024.
    expect(MAX_GROUPS_BYTES).toBe(1024);
    const name = (i: number) => `${String(i).padStart(3, '0')}${'n'.repeat(MAX_GROUP_LENGTH - 3)}`;
    idp.user = someone(Array.from({ length: 20 }, (_, i) => name(i)));
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual(Array.from({ length: 7 }, (_, i) => name(i)));
    // Counted in bytes, not characters: 99 CJK characters and a digit are 298 bytes (301 with quotes and separator): 3 fit.
    const wide = (i: number) => `${'工'.repeat(99)}${i}`;
    idp.user = someone(Array.from({ length: 6 }, (_, i) => wide(i)));
    expect(await groupsAfterSignIn('oidc', idp, e)).toEqual([0, 1, 2].map(wide));
  });

  it('Google supplies no groups; a password sign-in carries none', async () => {
    const google = await FakeOidcProvider.createGoogle();
    const e = makeEnv({ GOOGLE_CLIENT_ID: google.clientId, GOOGLE_CLIENT_SECRET: google.clientSecret });
    google.user = someone(['should-not-appear']);
    expect(await groupsAfterSignIn('google', google, e)).toBeUndefined();
    const r = await call('/auth/register', { json: { email: uniqueEmail('grp-pwd'), password: GOOD_PASSWORD }, env: e });
    const body = (await r.json()) as { access_token: string };
    expect(decodeJwt(body.access_token).groups).toBeUndefined();
    const me = await call('/auth/me', { env: e, headers: bearer(body.access_token) });
    expect(((await me.json()) as { user: { groups: unknown } }).user.groups).toEqual([]);
  });
});

describe('GitHub organisations and teams', () => {
  it('without a route that decides on groups: no read:org, no org or team calls, no groups', async () => {
    const gh = FakeGitHub.create();
    const e = makeEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret });
    const { location } = await startLogin('github', e);
    expect(location.searchParams.get('scope')).toBe('read:user user:email');
    gh.githubUser = { ...gh.githubUser, id: 700_000 + n++ };
    gh.emails = [{ email: uniqueEmail('gh-nogroups'), primary: true, verified: true }];
    gh.orgs = [{ login: 'Acme' }];
    const from = requests.length;
    expect(await groupsAfterSignIn('github', gh, e)).toBeUndefined();
    expect(requests.slice(from).some((q) => /\/user\/(orgs|teams)/.test(q.url))).toBe(false);
  });

  it('with one: asks read:org, and the groups are `github:org` and `github:org/team`, lower-cased', async () => {
    const gh = FakeGitHub.create();
    const e = makeEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret, ROUTES: JSON.stringify(GROUP_ROUTE), TOKEN_ENCRYPTION_KEY: KEY });
    const { location } = await startLogin('github', e);
    expect(location.searchParams.get('scope')).toBe('read:user user:email read:org');
    gh.githubUser = { ...gh.githubUser, id: 700_000 + n++ };
    gh.emails = [{ email: uniqueEmail('gh-groups'), primary: true, verified: true }];
    gh.orgs = [{ login: 'Acme' }, { login: 'open-source' }];
    gh.teams = [{ slug: 'platform', organization: { login: 'Acme' } }, { slug: 'Docs', organization: { login: 'Writers' } }];
    expect(await groupsAfterSignIn('github', gh, e)).toEqual(['github:acme', 'github:open-source', 'github:writers', 'github:acme/platform', 'github:writers/docs']);
  });
});

describe('groups from different providers never pose as one another', () => {
  let fakes: { idp: FakeOidcProvider; gh: FakeGitHub; gitlab: FakeOidcProvider } | undefined;
  /** A gateway with the company's OpenID Connect provider, GitHub and GitLab, and a route that admits `allow`. */
  async function threeProviders(allow: string[]) {
    fakes ??= { idp: await FakeOidcProvider.create(), gh: FakeGitHub.create(), gitlab: await theGitLab() };
    const { idp, gh, gitlab } = fakes;
    gh.orgs = [];
    gh.teams = [];
    const e = makeEnv({
      OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret,
      GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret,
      GITLAB_CLIENT_ID: gitlab.clientId, GITLAB_CLIENT_SECRET: gitlab.clientSecret,
      TOKEN_ENCRYPTION_KEY: KEY,
      ROUTES: JSON.stringify([{ path: '/eng', origin: 'service:ENG', auth: 'required', allow: { groups: allow } }]),
      ENG: recordingOrigin(),
    });
    return { idp, gh, gitlab, e };
  }
  const eng = async (e: TestEnv, r: Response) => (await call('/eng/x', { env: e, headers: bearer(sessionCookies(r).access) })).status;

  it('anyone can create a GitHub organisation or a GitLab group named like the company’s group: neither opens its route', async () => {
    const { idp, gh, gitlab, e } = await threeProviders(['eng', 'acme/platform']);
    // The company's own directory: its `eng` group opens the route.
    idp.user = someone(['eng']);
    expect(await eng(e, await signIn('oidc', idp, e))).toBe(200);
    // A stranger's GitHub organisation `eng`, and a GitLab group `acme` with a subgroup `platform`.
    gh.githubUser = { ...gh.githubUser, id: 750_000 + n++ };
    gh.emails = [{ email: uniqueEmail('gh-stranger'), primary: true, verified: true }];
    gh.orgs = [{ login: 'ENG' }];
    const viaGitHub = await signIn('github', gh, e);
    expect(await eng(e, viaGitHub)).toBe(403);
    expect(decodeJwt(sessionCookies(viaGitHub).access).groups).toEqual(['github:eng']);
    gitlab.user = someone(['acme', 'acme/platform']);
    const viaGitLab = await signIn('gitlab', gitlab, e);
    expect(await eng(e, viaGitLab)).toBe(403);
    expect(decodeJwt(sessionCookies(viaGitLab).access).groups).toEqual(['gitlab:acme', 'gitlab:acme/platform']);
  });

  it('a GitHub team and a GitLab subgroup of the same path are different groups; the generic provider cannot send names in their namespaces', async () => {
    const { idp, gh, gitlab, e } = await threeProviders(['github:acme/platform']);
    gh.githubUser = { ...gh.githubUser, id: 750_000 + n++ };
    gh.emails = [{ email: uniqueEmail('gh-team'), primary: true, verified: true }];
    gh.teams = [{ slug: 'platform', organization: { login: 'acme' } }];
    expect(await eng(e, await signIn('github', gh, e))).toBe(200);
    gitlab.user = someone(['acme/platform']);
    expect(await eng(e, await signIn('gitlab', gitlab, e))).toBe(403);
    idp.user = someone(['github:acme/platform', 'gitlab:acme', 'eng']);
    const r = await signIn('oidc', idp, e);
    expect(decodeJwt(sessionCookies(r).access).groups).toEqual(['eng']);
    expect(await eng(e, r)).toBe(403);
  });
});

describe('a provider sign-in that owes a second factor', () => {
  it('keeps the provider’s groups through the pending state: the session the code completes carries them', async () => {
    const gh = FakeGitHub.create();
    const e = mfaEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret, ROUTES: JSON.stringify(GROUP_ROUTE) });
    const u = await userWithTotp(e);
    await env.DB.prepare('UPDATE users SET email_verified = 1 WHERE id = ?').bind(u.userId).run();
    gh.githubUser = { ...gh.githubUser, id: 800_000 + n++ };
    gh.emails = [{ email: u.email, primary: true, verified: true }];
    gh.orgs = [{ login: 'eng' }];
    const r = await signIn('github', gh, e, '/eng');
    expect(r.headers.get('location')).toBe('/auth/mfa');
    const done = await call('/auth/mfa', { env: e, cookies: { '__Host-gatehouse-mfa': setCookies(r).get('__Host-gatehouse-mfa')!.value }, headers: NAV, form: { code: totpCode(u.secret, 1) } });
    expect(done.status).toBe(303);
    expect(decodeJwt(setCookies(done).get('__Host-gatehouse')!.value).groups).toEqual(['github:eng']);
    // The session has the sealed grant now: the spent pending sign-in keeps no copy of it.
    const left = await env.DB.prepare('SELECT provider_groups FROM mfa_pending WHERE user_id = ?').bind(u.userId).all<{ provider_groups: string | null }>();
    expect(left.results.length).toBeGreaterThan(0);
    expect(left.results.map((r) => r.provider_groups)).toEqual(left.results.map(() => null));
  });
});

describe('which providers can supply groups', () => {
  it('OpenID Connect providers with a groups claim and GitHub, never Google (the start-up check of group conditions)', () => {
    const settings = {
      GITHUB_CLIENT_ID: 'gh', GITHUB_CLIENT_SECRET: 'gh-secret',
      GOOGLE_CLIENT_ID: 'g', GOOGLE_CLIENT_SECRET: 'g-secret',
      GITLAB_CLIENT_ID: 'gl', GITLAB_CLIENT_SECRET: 'gl-secret',
      OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'oidc',
      TOKEN_ENCRYPTION_KEY: KEY,
    };
    const config = (extra: Record<string, unknown>) => {
      const r = parseConfig(makeEnv({ ...settings, ...extra }));
      if (!r.ok) throw r.error;
      return r.config;
    };
    expect(providersWithGroups(config({ ROUTES: JSON.stringify(GROUP_ROUTE) }))).toEqual(['github', 'gitlab', 'oidc']);
  });
});
