/**
 * The authorization endpoint: the code flow with PKCE S256, errors as pages until the client
 * and its redirect URI are known (never a redirect anywhere else), every error of RFC 6749
 * §4.1.2.1 after that with `state` and `iss`, codes stored only as hashes with the session's
 * sign-in, and the way through sign-in and back.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import type { OAuthCodeRow } from '../../../src/storage/user-sessions-grants';
import { sha256 } from '../../../src/util/random';
import { call, countRows, GOOD_PASSWORD, makeEnv, PUBLIC_URL } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { NAV, updateJar } from '../support/second-factor-helpers';
import { failingSessions, sessionRow, sessionsObject } from '../support/user-sessions-store';
import { authorizeUrl, CHALLENGE, expectCode, expectErrorRedirect, locationOf, navigate, signedInBrowser } from './authorize-support';

const MCP_URL = `${PUBLIC_URL}/mcp`;
const e = makeEnv({ ROUTES: JSON.stringify([{ path: '/mcp', origin: 'https://mcp.example.net', auth: 'required', resource: 'mcp' }]) });

/** A code as the object keeps it, with whether it was spent. */
type CodeRow = OAuthCodeRow & { used_at: number | null };

describe('a signed-in browser gets a code', () => {
  it('a first-party app gets a code with state and iss; the object keeps only the hash, with the session and its sign-in', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    const claims = decodeJwt(jar['__Host-gatehouse']!);
    const code = expectCode(await navigate(e, authorizeUrl(client), jar), client.redirectUris[0]!);
    const [userId, secret] = code.split('.') as [string, string];
    expect(userId).toBe(claims.sub);
    expect(await sessionRow('SELECT hash FROM oauth_codes WHERE hash = ?', [secret], userId)).toBeNull();
    const row = await sessionRow<CodeRow>('SELECT * FROM oauth_codes WHERE hash = ?', [await sha256(secret)], userId);
    expect(row).toMatchObject({
      session_id: claims.sid,
      client_id: client.id,
      redirect_uri: client.redirectUris[0],
      scope: 'openid email',
      nonce: 'nonce-456',
      code_challenge: CHALLENGE,
      resource: null,
      auth_time: claims.auth_time,
      used_at: null,
    });
    expect(JSON.parse(row!.amr)).toEqual(claims.amr);
    expect(row!.expires_at - row!.created_at).toBe(60);
    expect(await countRows('auth_events', "event = 'oauth_code_issued' AND user_id = ?", userId)).toBe(1);
  });

  it('the redirect URI keeps its own query, and a request without state gets none back', async () => {
    const uri = 'https://app.example.org/cb?tenant=7';
    const { client } = await seedClient({ firstParty: true, redirectUris: [uri] });
    const { jar } = await signedInBrowser(e);
    const r = await navigate(e, authorizeUrl(client, { state: null }), jar);
    const at = locationOf(r);
    expect(at.searchParams.get('tenant')).toBe('7');
    expect(at.searchParams.get('state')).toBeNull();
    expect(at.searchParams.get('code')).toMatch(/^usr_/);
  });

  it('a resource that is a protected route, or one of the client’s audiences, is kept on the code', async () => {
    const { client } = await seedClient({ firstParty: true, allowedAudiences: ['https://api.example.org'] });
    const { jar } = await signedInBrowser(e);
    for (const resource of [MCP_URL, 'https://api.example.org']) {
      const code = expectCode(await navigate(e, authorizeUrl(client, { resource }), jar), client.redirectUris[0]!);
      const [userId, secret] = code.split('.') as [string, string];
      const row = await sessionRow<CodeRow>('SELECT resource FROM oauth_codes WHERE hash = ?', [await sha256(secret)], userId);
      expect(row!.resource).toBe(resource);
    }
  });

  it('a browser that is not signed in goes to sign in and comes back to the same request, then gets its code', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { email } = await signedInBrowser(e);
    const url = authorizeUrl(client);
    const first = await navigate(e, url);
    expect(first.status).toBe(303);
    const login = locationOf(first);
    expect(login.pathname).toBe('/auth/login');
    const back = login.searchParams.get('return_to')!;
    expect(back.startsWith('/auth/authorize?')).toBe(true);
    const signedIn = await call('/auth/login', { env: e, form: { email, password: GOOD_PASSWORD, return_to: back }, headers: NAV });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe(back);
    const jar = updateJar({}, signedIn);
    expectCode(await navigate(e, back, jar), client.redirectUris[0]!);
  });
});

describe('back to the app from one of our own pages', () => {
  it('a request reached from the gateway’s own pages (after a form post) goes back by a page, since a redirect there would meet the form’s CSP', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    const r = await call(authorizeUrl(client), { env: e, cookies: jar, headers: NAV });
    expect(r.status).toBe(200);
    expect(r.headers.get('location')).toBeNull();
    const html = await r.text();
    const href = /id="continue" href="([^"]+)"/.exec(html)![1]!.replaceAll('&amp;', '&');
    const at = new URL(href);
    expect(`${at.origin}${at.pathname}`).toBe(client.redirectUris[0]);
    expect(at.searchParams.get('code')).toMatch(/^usr_/);
    expect(at.searchParams.get('iss')).toBe(PUBLIC_URL);
    const nonce = /script-src 'nonce-([^']+)'/.exec(r.headers.get('content-security-policy')!)![1]!;
    expect(html).toContain(`<script nonce="${nonce}">location.replace(${JSON.stringify(href)});</script>`);
    // An error goes back the same way.
    const bad = await call(authorizeUrl(client, { response_type: 'token' }), { env: e, cookies: jar, headers: NAV });
    expect(bad.status).toBe(200);
    expect(await bad.text()).toContain('error=unsupported_response_type');
  });
});

describe('the sessions object stores a code only for a live session', () => {
  it('an ended session, or one the object does not know, gets no code row', async () => {
    const { jar } = await signedInBrowser(e);
    const claims = decodeJwt(jar['__Host-gatehouse']!);
    const userId = claims.sub!;
    const t = Math.floor(Date.now() / 1000);
    const row = (sessionId: string) => ({
      hash: `hash-${sessionId}`, session_id: sessionId, client_id: 'cli_x', redirect_uri: 'https://app.example.org/callback', scope: 'openid',
      nonce: null, code_challenge: CHALLENGE, resource: null, created_at: t, expires_at: t + 60,
    });
    expect(await sessionsObject(userId).createAuthorizationCode(userId, row('ses_unknown'))).toBe(false);
    const out = await call('/auth/logout', { env: e, cookies: jar, method: 'POST' });
    expect(out.status).toBeLessThan(400);
    expect(await sessionsObject(userId).createAuthorizationCode(userId, row(claims.sid as string))).toBe(false);
    expect(await countRows('auth_events', "event = 'oauth_code_issued' AND user_id = ?", userId)).toBe(0);
    expect(await sessionRow('SELECT hash FROM oauth_codes', [], userId)).toBeNull();
  });
});

describe('until the client and its redirect URI are known, errors are pages, never redirects', () => {
  const expectPage = async (r: Response, text: RegExp) => {
    expect(r.status).toBe(400);
    expect(r.headers.get('location')).toBeNull();
    expect(r.headers.get('content-type')).toContain('text/html');
    expect(await r.text()).toMatch(text);
  };

  it('no client_id, an unknown or a disabled client, a repeated client_id', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { client: off } = await seedClient({ firstParty: true, disabledAt: 1 });
    const { jar } = await signedInBrowser(e);
    await expectPage(await navigate(e, authorizeUrl(client, { client_id: null }), jar), /client_id/);
    await expectPage(await navigate(e, authorizeUrl(client, { client_id: 'cli_nobody' }), jar), /not registered/);
    await expectPage(await navigate(e, authorizeUrl(off), jar), /not registered/);
    await expectPage(await navigate(e, `${authorizeUrl(client)}&client_id=${client.id}`, jar), /client_id/);
  });

  it('no redirect_uri, or one that is not exactly a registered one (near misses included)', async () => {
    const { client } = await seedClient({ firstParty: true, redirectUris: ['https://app.example.org/callback', 'http://127.0.0.1:8080/cb'] });
    const { jar } = await signedInBrowser(e);
    await expectPage(await navigate(e, authorizeUrl(client, { redirect_uri: null }), jar), /redirect_uri/);
    for (const uri of [
      'https://app.example.org/callback/',
      'https://APP.example.org/callback',
      'https://app.example.org/Callback',
      'https://app.example.org/callback?x=1',
      'https://app.example.org:8443/callback',
      'https://app.example.org:443/callback',
      'http://app.example.org/callback',
      'https://app.example.org/callback#frag',
      'https://evil.example/callback',
      'http://127.0.0.1:8081/cb',
      'http://localhost:8080/cb',
    ]) {
      const r = await navigate(e, authorizeUrl(client, { redirect_uri: uri }), jar);
      await expectPage(r, /not one .* registered/);
    }
    await expectPage(await navigate(e, `${authorizeUrl(client)}&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`, jar), /redirect_uri/);
  });
});

describe('after that, every error goes back to the app with its exact code, state and iss', () => {
  it('invalid_request: no response_type, a repeated or over-long parameter, request objects, another response_mode', async () => {
    const { client } = await seedClient({ firstParty: true });
    const uri = client.redirectUris[0]!;
    const { jar } = await signedInBrowser(e);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { response_type: null }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, `${authorizeUrl(client)}&nonce=again`, jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, `${authorizeUrl(client)}&state=again`, jar), uri, 'invalid_request', null);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { nonce: 'n'.repeat(257) }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { state: 's'.repeat(513) }), jar), uri, 'invalid_request', null);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { request: 'eyJ.x.y' }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { response_mode: 'fragment' }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { prompt: 'none login' }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { max_age: '-1' }), jar), uri, 'invalid_request');
  });

  it('PKCE is required: no challenge, plain, no method, or a malformed challenge is invalid_request', async () => {
    const { client } = await seedClient({ firstParty: true, kind: 'public', authMethod: 'none' });
    const uri = client.redirectUris[0]!;
    const { jar } = await signedInBrowser(e);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { code_challenge: null, code_challenge_method: null }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { code_challenge_method: 'plain' }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { code_challenge_method: 'plain', code_challenge: 'a'.repeat(43) }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { code_challenge_method: null }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { code_challenge: CHALLENGE.slice(1) }), jar), uri, 'invalid_request');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { code_challenge: `${CHALLENGE.slice(1)}=` }), jar), uri, 'invalid_request');
  });

  it('unsupported_response_type, unauthorized_client, invalid_scope, invalid_target', async () => {
    const { client } = await seedClient({ firstParty: true, allowedScopes: ['openid', 'email'] });
    const { client: machine } = await seedClient({ firstParty: true, grantTypes: ['client_credentials'] });
    const uri = client.redirectUris[0]!;
    const { jar } = await signedInBrowser(e);
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { response_type: 'token' }), jar), uri, 'unsupported_response_type');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { response_type: 'code id_token' }), jar), uri, 'unsupported_response_type');
    expectErrorRedirect(await navigate(e, authorizeUrl(machine), jar), machine.redirectUris[0]!, 'unauthorized_client');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { scope: 'openid profile' }), jar), uri, 'invalid_scope');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { scope: 'openid "x' }), jar), uri, 'invalid_scope');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { resource: 'https://elsewhere.example/mcp' }), jar), uri, 'invalid_target');
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { resource: `${MCP_URL}/` }), jar), uri, 'invalid_target');
  });

  it('login_required: prompt=none without a session', async () => {
    const { client } = await seedClient({ firstParty: true });
    expectErrorRedirect(await navigate(e, authorizeUrl(client, { prompt: 'none' })), client.redirectUris[0]!, 'login_required');
  });

  it('temporarily_unavailable: the sessions cannot be reached', async () => {
    const { client } = await seedClient({ firstParty: true });
    const { jar } = await signedInBrowser(e);
    const broken = makeEnv({ ...e, USER_SESSIONS: failingSessions() });
    expectErrorRedirect(await navigate(broken, authorizeUrl(client), jar), client.redirectUris[0]!, 'temporarily_unavailable');
  });
});

describe('an app that registered itself is not sent its errors unasked', () => {
  const landing = 'https://phish.example/landing';

  it('an error before the user did anything is a page with a link to the app, never a redirect: anyone who registers cannot use the endpoint as a redirector', async () => {
    const { client } = await seedClient({ source: 'dynamic', kind: 'public', authMethod: 'none', redirectUris: [landing] });
    const errors: Record<string, string | null>[] = [{ response_type: 'token' }, { prompt: 'none' }, { code_challenge: null }, { scope: 'admin' }];
    for (const extra of errors) {
      const r = await navigate(e, authorizeUrl(client, extra));
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.headers.get('location')).toBeNull();
      const html = await r.text();
      expect(html).not.toContain('location.replace');
      const href = /href="(https:\/\/phish\.example\/landing\?[^"]*)"/.exec(html)?.[1]?.replaceAll('&amp;', '&');
      expect(href, 'a link back to the app').toBeTruthy();
      expect(new URL(href!).searchParams.get('error')).toBeTruthy();
      expect(new URL(href!).searchParams.get('state')).toBe('state-123');
      expect(new URL(href!).searchParams.get('iss')).toBe(PUBLIC_URL);
    }
  });

  it('an admin’s app still gets its errors by redirect, and a code still goes by redirect to an app the user allowed', async () => {
    const { client: admin } = await seedClient({ redirectUris: [landing] });
    expectErrorRedirect(await navigate(e, authorizeUrl(admin, { prompt: 'none' })), landing, 'login_required');
    const { client } = await seedClient({ source: 'dynamic', kind: 'public', authMethod: 'none', redirectUris: [landing], firstParty: true });
    const { jar } = await signedInBrowser(e);
    expectCode(await navigate(e, authorizeUrl(client), jar), landing);
  });
});
