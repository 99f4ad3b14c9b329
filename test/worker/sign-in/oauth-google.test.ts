/** Google: endpoints from the catalog (no discovery round trip), and both issuer spellings Google uses. */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, PUBLIC_URL, stateSnapshot, type TestEnv } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork, requests } from '../support/oauth-fakes';
import { signIn, startLogin } from '../support/oauth-helpers';

let google: FakeOidcProvider;
let e: TestEnv;

beforeAll(async () => {
  installFakeNetwork();
  google = await FakeOidcProvider.createGoogle();
  e = makeEnv({ GOOGLE_CLIENT_ID: google.clientId, GOOGLE_CLIENT_SECRET: google.clientSecret });
});

let n = 0;
const user = () => {
  n += 1;
  google.user = { sub: `1000${n}${Date.now()}`, email: `g-${n}-${Date.now()}@gmail.example`, email_verified: true, name: `G ${n}` };
  return google.user;
};

describe('Google', () => {
  it('starts at accounts.google.com with openid email profile, PKCE and a nonce, without fetching anything', async () => {
    const from = requests.length;
    const { location } = await startLogin('google', e);
    expect(`${location.origin}${location.pathname}`).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(location.searchParams.get('scope')).toBe('openid email profile');
    expect(location.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/auth/callback/google`);
    expect(location.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.has('access_type')).toBe(false);
    expect(requests.length).toBe(from);
  });

  it('signs in with an ID token from https://accounts.google.com, and from accounts.google.com', async () => {
    const a = user();
    expect((await signIn('google', google, e)).status).toBe(303);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM identities WHERE provider = 'google' AND subject = ?").bind(a.sub).first('n')).toBe(1);
    const b = user();
    google.tamper = (claims) => {
      claims.iss = 'accounts.google.com';
    };
    try {
      expect((await signIn('google', google, e)).status).toBe(303);
      expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM identities WHERE provider = 'google' AND subject = ?").bind(b.sub).first('n')).toBe(1);
    } finally {
      google.tamper = () => {};
    }
  });

  it('refuses any other issuer', async () => {
    user();
    google.tamper = (claims) => {
      claims.iss = 'https://accounts.google.com.evil.example';
    };
    try {
      const before = await stateSnapshot();
      expect((await signIn('google', google, e)).status).toBe(400);
      expect(await stateSnapshot()).toEqual(before);
    } finally {
      google.tamper = () => {};
    }
  });

  it('asks for offline access (a refresh token) only when provider tokens are kept', async () => {
    const keep = makeEnv({ GOOGLE_CLIENT_ID: google.clientId, GOOGLE_CLIENT_SECRET: google.clientSecret, STORE_PROVIDER_TOKENS: 'true', TOKEN_ENCRYPTION_KEY: 'x'.repeat(40) });
    const { location } = await startLogin('google', keep);
    expect(location.searchParams.get('access_type')).toBe('offline');
    expect(location.searchParams.get('prompt')).toBe('consent');
  });
});
