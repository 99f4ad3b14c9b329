/**
 * Fake OAuth providers at the fetch level: `installFakeNetwork()` replaces the global `fetch`
 * the Worker (and arctic, and jose) use, so each provider's token, key, discovery, userinfo
 * and API endpoints answer from here. Nothing reaches a network. The fakes check what a real
 * provider checks (client credentials, redirect URI, PKCE S256, single-use codes) and can be
 * told to misbehave.
 */
import { base64url, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { vi } from 'vitest';

type Handler = (request: Request) => Promise<Response> | Response;
/** What a misbehaving endpoint does: answer 500, hang until aborted, answer HTML, fail to connect, or stream far too much. */
export type Fault = 'down' | 'hang' | 'garbage' | 'refuse-connection' | 'rate-limited' | 'huge' | undefined;

/** Bytes the reader has pulled from `huge` answers so far (the stream makes each chunk only when asked). */
export const huge = { pulled: 0 };
const HUGE_CHUNK = 64 * 1024;
const HUGE_TOTAL = 16 * 1024 * 1024;

const hosts = new Map<string, Handler>();
export const requests: { url: string; method: string; body?: string; headers: Record<string, string> }[] = [];

/**
 * A request body as text. Token requests are form-encoded, and workerd warns on `.text()` for a
 * body whose content type is not text ("does not appear to be text"): decode the bytes instead.
 */
async function bodyText(request: Request): Promise<string> {
  return new TextDecoder().decode(await request.arrayBuffer());
}

/** Replaces `fetch` for this test file; unknown hosts fail as if unreachable. */
export function installFakeNetwork(): void {
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
    let request = new Request(input, init);
    // Like a real fetch: redirects are followed unless the caller asked for `manual` (a 307/308
    // resends the method and body; 301/302/303 turn a POST into a body-less GET).
    for (let hops = 0; ; hops += 1) {
      const body = request.method === 'POST' ? await bodyText(request.clone()) : undefined;
      requests.push({ url: request.url, method: request.method, body, headers: Object.fromEntries(request.headers) });
      const handler = hosts.get(new URL(request.url).origin);
      if (!handler) throw new TypeError(`fake network: no host for ${request.url}`);
      const response = await handler(request);
      const location = response.headers.get('location');
      if (request.redirect === 'manual' || location === null || ![301, 302, 303, 307, 308].includes(response.status) || hops >= 20) return response;
      const keep = response.status === 307 || response.status === 308;
      request = new Request(new URL(location, request.url), {
        method: keep ? request.method : 'GET',
        headers: request.headers,
        body: keep ? body : undefined,
        signal: request.signal,
      });
    }
  });
}

/** A host of our own on the fake network (a redirect target, a webhook receiver, ...). */
export function fakeHost(origin: string, handler: Handler): void {
  hosts.set(origin, handler);
}

let hangListener: ((request: Request) => void) | undefined;

/** Tells `listener` of each request the network holds without answer (a `hang` fault); none: stop. */
export function whenHanging(listener?: (request: Request) => void): void {
  hangListener = listener;
}

/** Waits `ms`, or rejects when the request is aborted first. */
function delayed(ms: number, request: Request): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    request.signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(request.signal.reason);
    });
  });
}

function faulty(fault: Fault, request: Request): Promise<Response> | Response | null {
  switch (fault) {
    case 'down':
      return new Response('upstream exploded', { status: 500 });
    case 'garbage':
      return new Response('<html>definitely not json</html>', { status: 200, headers: { 'content-type': 'text/html' } });
    case 'rate-limited':
      return new Response('{"message":"API rate limit exceeded"}', { status: 403, headers: { 'x-ratelimit-remaining': '0', 'content-type': 'application/json' } });
    case 'refuse-connection':
      throw new TypeError('connection refused');
    case 'huge': {
      // 16 MiB of one JSON string, with no Content-Length: only reading tells how big it is.
      let sent = 0;
      const chunk = new TextEncoder().encode('x'.repeat(HUGE_CHUNK));
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"access_token":"'));
        },
        pull(controller) {
          if (sent >= HUGE_TOTAL) {
            controller.enqueue(new TextEncoder().encode('"}'));
            controller.close();
            return;
          }
          sent += chunk.byteLength;
          huge.pulled += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    }
    case 'hang':
      // Never answers; ends only if the caller gives up through its AbortSignal.
      return new Promise((_, reject) => {
        request.signal?.addEventListener('abort', () => reject(request.signal.reason));
        hangListener?.(request);
      });
    default:
      return null;
  }
}

const json = (data: unknown, status = 200) => new Response(JSON.stringify(data), { status, headers: { 'content-type': 'application/json' } });

async function s256(verifier: string): Promise<string> {
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
  scope: string;
  user: FakeUser;
}

export interface FakeUser {
  sub: string;
  email?: string;
  email_verified?: boolean | string;
  name?: string;
  /** The `groups` claim, as the provider would send it (anything: tests send bad values too). */
  groups?: unknown;
  /** More claims, in the ID token and userinfo alike (a custom groups claim name). */
  extra?: Record<string, unknown>;
}

let counter = 0;

/** The parts a provider authorization redirect needs to carry back. */
export interface Consent {
  /** Path and query of the gateway callback the provider redirects to. */
  callback: string;
  code: string;
}

abstract class FakeProvider {
  readonly codes = new Map<string, PendingCode>();
  faults: { token?: Fault; jwks?: Fault; discovery?: Fault; userinfo?: Fault; api?: Fault } = {};
  /** Answer only after this many milliseconds (as a slow provider would). */
  delays: { token?: number; jwks?: number; userinfo?: number } = {};
  /** Rotate refresh tokens: each one works once and is replaced by a new one. */
  rotateRefresh = false;
  private readonly liveRefresh = new Set(['refresh-1']);
  /** Refuse refresh grants with this OAuth error (e.g. invalid_client from a wrong secret). */
  refreshError: { error: string; status: 400 | 401 } | null = null;
  /** Refresh requests waiting for the test to let them through (with `holdRefresh`). */
  holdRefresh = false;
  readonly heldRefreshes: (() => void)[] = [];
  /** Issue no refresh token at the code exchange (as Google does without prompt=consent). */
  omitRefreshToken = false;
  /** The user who "consents" at the next authorization. */
  user: FakeUser = { sub: 'user-1', email: 'someone@example.com', email_verified: true, name: 'Some One' };
  tokenCalls = 0;
  refreshCalls = 0;
  accessTokenTtl = 3600;
  /** Refuse refresh grants (the user revoked the app at the provider). */
  refuseRefresh = false;

  constructor(
    readonly clientId: string,
    readonly clientSecret: string,
  ) {}

  /** Plays the provider's consent screen: checks the authorization request, mints a code. */
  async authorize(location: string, expectedAuthorizeUrl: string): Promise<Consent> {
    const url = new URL(location);
    if (`${url.origin}${url.pathname}` !== expectedAuthorizeUrl) throw new Error(`authorize at ${url.origin}${url.pathname}, expected ${expectedAuthorizeUrl}`);
    const q = url.searchParams;
    if (q.get('response_type') !== 'code' || q.get('client_id') !== this.clientId) throw new Error('bad authorization request');
    if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) throw new Error('PKCE S256 missing');
    const code = `code-${++counter}-${crypto.randomUUID()}`;
    this.codes.set(code, {
      clientId: this.clientId,
      redirectUri: q.get('redirect_uri')!,
      challenge: q.get('code_challenge')!,
      nonce: q.get('nonce'),
      scope: q.get('scope') ?? '',
      user: { ...this.user },
    });
    const redirect = new URL(q.get('redirect_uri')!);
    redirect.searchParams.set('code', code);
    redirect.searchParams.set('state', q.get('state')!);
    const iss = this.responseIssuer();
    if (iss !== null) redirect.searchParams.set('iss', iss);
    return { callback: `${redirect.pathname}${redirect.search}`, code };
  }

  /** More fields of a refresh grant's answer (an OpenID Connect provider's new ID token). */
  protected async refreshExtras(): Promise<Record<string, unknown>> {
    return {};
  }

  /** The `iss` to put on the authorization response (RFC 9207), or null for none. */
  protected responseIssuer(): string | null {
    return null;
  }

  /** Token endpoint: client authentication, code, redirect URI and PKCE are all checked. */
  protected async token(request: Request, mint: (pending: PendingCode) => Promise<Record<string, unknown>>): Promise<Response> {
    const form = new URLSearchParams(await bodyText(request));
    const auth = request.headers.get('authorization') ?? '';
    const [id, secret] = atob(auth.replace(/^Basic /, '')).split(':');
    if (id !== this.clientId || secret !== this.clientSecret) return json({ error: 'invalid_client' }, 401);
    if (form.get('grant_type') === 'refresh_token') {
      this.refreshCalls += 1;
      const call = this.refreshCalls;
      if (this.holdRefresh) await new Promise<void>((release) => this.heldRefreshes.push(release));
      if (this.refreshError) return json({ error: this.refreshError.error }, this.refreshError.status);
      const presented = form.get('refresh_token') ?? '';
      if (this.rotateRefresh) {
        if (!this.liveRefresh.delete(presented)) return json({ error: 'invalid_grant' }, 400);
        const next = `refresh-r${call}`;
        this.liveRefresh.add(next);
        return json({ access_token: `renewed-${call}`, token_type: 'Bearer', expires_in: this.accessTokenTtl, refresh_token: next });
      }
      if (presented !== 'refresh-1' || this.refuseRefresh) return json({ error: 'invalid_grant' }, 400);
      return json({ access_token: `renewed-${call}`, token_type: 'Bearer', expires_in: this.accessTokenTtl, ...(await this.refreshExtras()) });
    }
    this.tokenCalls += 1;
    const code = form.get('code') ?? '';
    const pending = this.codes.get(code);
    this.codes.delete(code);
    if (!pending) return json({ error: 'invalid_grant', error_description: 'unknown or used code' }, 400);
    if (form.get('redirect_uri') !== pending.redirectUri) return json({ error: 'invalid_grant', error_description: 'redirect_uri' }, 400);
    if ((await s256(form.get('code_verifier') ?? '')) !== pending.challenge) return json({ error: 'invalid_grant', error_description: 'PKCE' }, 400);
    return json(await mint(pending));
  }
}

export class FakeOidcProvider extends FakeProvider {
  issuer = `https://idp-${++counter}.example.test`;
  authorizeUrl = '';
  private keys!: { privateKey: CryptoKey; kid: string; jwk: Record<string, unknown> };
  /** Change the ID token just before it is signed (wrong aud, nonce, ...). */
  tamper: (claims: JWTPayload, header: { alg: string; kid?: string }) => void = () => {};
  /** Sign with this key instead (a key the JWKS does not publish). */
  signWith: CryptoKey | null = null;
  /** Leave the email out of the ID token (then only userinfo has it). */
  emailOnlyInUserinfo = false;
  userinfoSub: string | null = null;
  /** Answer the token request without an ID token. */
  omitIdToken = false;
  /** Leave the groups (and `extra` claims) out of the ID token: only userinfo has them (as GitLab does). */
  groupsOnlyInUserinfo = false;
  /** Answer a refresh grant with a new ID token about the user as they are now (most providers do). */
  idTokenOnRefresh = true;
  /** Who each access token of a code exchange was issued to: userinfo answers about them, as a real provider does. */
  private readonly tokenUsers = new Map<string, FakeUser>();
  /** Discovery's `authorization_response_iss_parameter_supported` (RFC 9207); left out when undefined. */
  issParameterSupported: boolean | undefined = undefined;
  /** The `iss` the authorization response carries: none, this issuer, or another value. */
  sendIss: 'none' | 'own' | string = 'none';
  /** Answer the token request with this redirect instead (a token endpoint gone rogue). */
  tokenRedirect: { status: number; location: string } | null = null;

  static async create(clientId = 'client-oidc', clientSecret = 'secret-oidc'): Promise<FakeOidcProvider> {
    const p = new FakeOidcProvider(clientId, clientSecret);
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const kid = `k-${counter}`;
    p.keys = { privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
    p.authorizeUrl = `${p.issuer}/authorize`;
    hosts.set(p.issuer, (r) => p.handle(r, new URL(r.url).pathname));
    return p;
  }

  /**
   * Google's endpoints, written down in the gateway's catalog (no discovery): authorization at
   * accounts.google.com, token at oauth2.googleapis.com, keys at www.googleapis.com.
   */
  static async createGoogle(clientId = 'google-client', clientSecret = 'google-secret'): Promise<FakeOidcProvider> {
    const p = await FakeOidcProvider.create(clientId, clientSecret);
    hosts.delete(p.issuer);
    p.issuer = 'https://accounts.google.com';
    p.authorizeUrl = 'https://accounts.google.com/o/oauth2/v2/auth';
    hosts.set('https://oauth2.googleapis.com', (r) => p.handle(r, new URL(r.url).pathname === '/token' ? '/token' : '/none'));
    hosts.set('https://www.googleapis.com', (r) => p.handle(r, new URL(r.url).pathname === '/oauth2/v3/certs' ? '/jwks' : '/none'));
    return p;
  }

  /**
   * GitLab.com as its documentation describes it: discovery at https://gitlab.com, `groups`
   * (direct and inherited memberships) in userinfo only, `groups_direct` in the ID token.
   */
  static async createGitLab(clientId = 'gitlab-client', clientSecret = 'gitlab-secret'): Promise<FakeOidcProvider> {
    const p = await FakeOidcProvider.create(clientId, clientSecret);
    hosts.delete(p.issuer);
    p.issuer = 'https://gitlab.com';
    p.authorizeUrl = 'https://gitlab.com/authorize';
    p.groupsOnlyInUserinfo = true;
    hosts.set(p.issuer, (r) => p.handle(r, new URL(r.url).pathname));
    return p;
  }

  protected override responseIssuer(): string | null {
    return this.sendIss === 'none' ? null : this.sendIss === 'own' ? this.issuer : this.sendIss;
  }

  private async handle(request: Request, path: string): Promise<Response> {
    if (path === '/.well-known/openid-configuration') {
      return (
        faulty(this.faults.discovery, request) ??
        json({
          issuer: this.issuer,
          authorization_endpoint: `${this.issuer}/authorize`,
          token_endpoint: `${this.issuer}/token`,
          jwks_uri: `${this.issuer}/jwks`,
          userinfo_endpoint: `${this.issuer}/userinfo`,
          ...(this.issParameterSupported === undefined ? {} : { authorization_response_iss_parameter_supported: this.issParameterSupported }),
        })
      );
    }
    if (path === '/jwks') {
      if (this.delays.jwks) await delayed(this.delays.jwks, request);
      return faulty(this.faults.jwks, request) ?? json({ keys: [this.keys.jwk] });
    }
    if (path === '/token') {
      if (this.delays.token) await delayed(this.delays.token, request);
      if (this.tokenRedirect) return new Response(null, { status: this.tokenRedirect.status, headers: { location: this.tokenRedirect.location } });
      return faulty(this.faults.token, request) ?? this.token(request, (pending) => this.mint(pending));
    }
    if (path === '/userinfo') {
      if (this.delays.userinfo) await delayed(this.delays.userinfo, request);
      // A renewed token answers about the user as they are now (`user`).
      const bearer = (request.headers.get('authorization') ?? '').replace(/^Bearer /, '');
      const { sub, extra, ...rest } = this.tokenUsers.get(bearer) ?? this.user;
      return faulty(this.faults.userinfo, request) ?? json({ sub: this.userinfoSub ?? sub, ...rest, ...extra });
    }
    return new Response('not found', { status: 404 });
  }

  /** An ID token about `user` (with `nonce` when it answers an authorization request). */
  private async idToken(user: FakeUser, nonce: string | null): Promise<string> {
    const { sub, email, email_verified, name, groups, extra } = user;
    const claims: JWTPayload = { sub, name, ...(this.emailOnlyInUserinfo ? {} : { email, email_verified }) };
    if (!this.groupsOnlyInUserinfo) Object.assign(claims, groups === undefined ? {} : { groups }, extra);
    if (nonce !== null) claims.nonce = nonce;
    const header: { alg: string; kid?: string } = { alg: 'RS256', kid: this.keys.kid };
    const now = Math.floor(Date.now() / 1000);
    Object.assign(claims, { iss: this.issuer, aud: this.clientId, iat: now, exp: now + 300 });
    this.tamper(claims, header);
    return new SignJWT(claims).setProtectedHeader(header).sign(this.signWith ?? this.keys.privateKey);
  }

  /**
   * A back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.4) from this
   * provider, signed with its published key: right in every claim unless `claims` or `header`
   * say otherwise (a claim set to undefined is left out).
   */
  async logoutToken(claims: JWTPayload = {}, header: { alg?: string; kid?: string; typ?: string } = {}, key?: CryptoKey | Uint8Array): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const all: JWTPayload = {
      iss: this.issuer,
      aud: this.clientId,
      iat: now,
      exp: now + 120,
      jti: crypto.randomUUID(),
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
      ...claims,
    };
    for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
    const protectedHeader: { alg: string; kid?: string; typ?: string } = { alg: 'RS256', kid: this.keys.kid, typ: 'logout+jwt', ...header };
    if (protectedHeader.typ === undefined) delete protectedHeader.typ;
    return new SignJWT(all).setProtectedHeader(protectedHeader).sign(key ?? this.keys.privateKey);
  }

  protected override async refreshExtras(): Promise<Record<string, unknown>> {
    return this.idTokenOnRefresh && !this.omitIdToken ? { id_token: await this.idToken(this.user, null) } : {};
  }

  private async mint(pending: PendingCode): Promise<Record<string, unknown>> {
    const idToken = await this.idToken(pending.user, pending.nonce);
    const accessToken = `at-${crypto.randomUUID()}`;
    this.tokenUsers.set(accessToken, pending.user);
    const tokens = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: this.accessTokenTtl,
      ...(this.omitRefreshToken ? {} : { refresh_token: 'refresh-1' }),
      scope: pending.scope,
    };
    return this.omitIdToken ? tokens : { ...tokens, id_token: idToken };
  }
}

export interface FakeGitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export class FakeGitHub extends FakeProvider {
  githubUser = { id: 4242, login: 'octo', name: 'Octo Cat', avatar_url: 'https://avatars.example.test/u/4242' };
  emails: FakeGitHubEmail[] = [{ email: 'octo@example.com', primary: true, verified: true }];
  authorizeUrl = 'https://github.com/login/oauth/authorize';
  /** GitHub answers some token errors with status 200. */
  errorIn200: string | null = null;
  /** What `GET /user/orgs` and `GET /user/teams` list (they answer only a token granted `read:org`). */
  orgs: { login: string }[] = [];
  teams: { slug: string; organization: { login: string } }[] = [];
  /** Scopes granted per access token, as the code exchange recorded them. */
  private readonly granted = new Map<string, string[]>();

  static create(clientId = 'gh-client', clientSecret = 'gh-secret'): FakeGitHub {
    const p = new FakeGitHub(clientId, clientSecret);
    hosts.set('https://github.com', (r) => p.handleWeb(r));
    hosts.set('https://api.github.com', (r) => p.handleApi(r));
    return p;
  }

  private async handleWeb(request: Request): Promise<Response> {
    if (new URL(request.url).pathname !== '/login/oauth/access_token') return new Response('not found', { status: 404 });
    const fault = faulty(this.faults.token, request);
    if (fault) return fault;
    if (this.errorIn200) return json({ error: this.errorIn200 });
    return this.token(request, async (pending) => {
      const token = `gho_${crypto.randomUUID()}`;
      this.granted.set(token, pending.scope.split(' ').filter(Boolean));
      return { access_token: token, token_type: 'bearer', scope: pending.scope.replaceAll(' ', ',') };
    });
  }

  private async handleApi(request: Request): Promise<Response> {
    const fault = faulty(this.faults.api, request);
    if (fault) return fault;
    if (!/^Bearer gho_/.test(request.headers.get('authorization') ?? '')) return json({ message: 'Bad credentials' }, 401);
    const path = new URL(request.url).pathname;
    if (path === '/user') return json(this.githubUser);
    if (path === '/user/emails') return json(this.emails);
    if (path === '/user/orgs' || path === '/user/teams') {
      // Without read:org GitHub lists public memberships only (and no teams); this fake, none.
      const token = (request.headers.get('authorization') ?? '').replace(/^Bearer /, '');
      if (!this.granted.get(token)?.includes('read:org')) return json(path === '/user/orgs' ? [] : { message: 'Resource not accessible by integration' }, path === '/user/orgs' ? 200 : 403);
      return json(path === '/user/orgs' ? this.orgs : this.teams);
    }
    return json({ message: 'Not Found' }, 404);
  }
}
