/** GitHub sign-in: PKCE and minimal scopes, /user + /user/emails, primary verified email only. */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, PUBLIC_URL, stateSnapshot, type TestEnv } from '../support/helpers';
import { FakeGitHub, installFakeNetwork, requests } from '../support/oauth-fakes';
import { signIn, startLogin } from '../support/oauth-helpers';

let gh: FakeGitHub;
let e: TestEnv;

beforeAll(() => {
  installFakeNetwork();
  gh = FakeGitHub.create();
  e = makeEnv({ GITHUB_CLIENT_ID: gh.clientId, GITHUB_CLIENT_SECRET: gh.clientSecret });
});

let n = 0;
function account(emails: { email: string; primary: boolean; verified: boolean }[]) {
  n += 1;
  gh.githubUser = { id: 100_000 + n + Math.floor(Math.random() * 1e6), login: `octo${n}`, name: `Octo ${n}`, avatar_url: `https://avatars.example.test/u/${n}` };
  gh.emails = emails;
}

describe('GitHub', () => {
  it('asks for read:user user:email with PKCE S256 and no nonce', async () => {
    const { location } = await startLogin('github', e);
    expect(`${location.origin}${location.pathname}`).toBe('https://github.com/login/oauth/authorize');
    expect(location.searchParams.get('scope')).toBe('read:user user:email');
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/auth/callback/github`);
    expect(location.searchParams.has('nonce')).toBe(false);
  });

  it('signs in with the primary verified email, keyed by the numeric id', async () => {
    const email = `gh-${Date.now()}@example.com`;
    account([
      { email: `other-${Date.now()}@example.com`, primary: false, verified: true },
      { email, primary: true, verified: true },
    ]);
    const from = requests.length;
    const r = await signIn('github', gh, e, '/after');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/after');
    const user = await env.DB.prepare('SELECT * FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number; name: string; avatar_url: string }>();
    expect(user).toMatchObject({ email_verified: 1, name: gh.githubUser.name, avatar_url: gh.githubUser.avatar_url });
    const identity = await env.DB.prepare("SELECT * FROM identities WHERE provider = 'github' AND user_id = ?").bind(user!.id).first<{ subject: string }>();
    expect(identity?.subject).toBe(String(gh.githubUser.id));
    const api = requests.slice(from).filter((q) => q.url.startsWith('https://api.github.com/'));
    expect(api.map((q) => q.url).sort()).toEqual(['https://api.github.com/user', 'https://api.github.com/user/emails']);
    expect(api[0]!.headers['user-agent']).toBe('Gatehouse');
  });

  it('does not use a verified secondary when the primary is unverified: no email, refused', async () => {
    account([
      { email: `primary-${Date.now()}@example.com`, primary: true, verified: false },
      { email: `secondary-${Date.now()}@example.com`, primary: false, verified: true },
    ]);
    const before = await stateSnapshot();
    const r = await signIn('github', gh, e);
    expect(r.status).toBe(403);
    expect(await r.text()).toContain('did not share a usable email');
    expect(await stateSnapshot()).toEqual(before);
  });

  it('treats GitHub’s "error in a 200" token answer as a refusal (400)', async () => {
    account([{ email: `gh-err-${Date.now()}@example.com`, primary: true, verified: true }]);
    gh.errorIn200 = 'bad_verification_code';
    try {
      const before = await stateSnapshot();
      const r = await signIn('github', gh, e);
      expect(r.status).toBe(400);
      expect(await stateSnapshot()).toEqual(before);
    } finally {
      gh.errorIn200 = null;
    }
  });
});
