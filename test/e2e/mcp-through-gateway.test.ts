/**
 * The MCP TypeScript SDK's client connects through the gateway's proxy to an MCP server built
 * with the same SDK (streamable HTTP), behind a route marked `resource = "mcp"`: it gets a 401,
 * discovers the resource's metadata and from there the gateway as its authorization server,
 * registers dynamically, sends a real Chromium through sign-in and the consent page (PKCE),
 * exchanges the code and calls the server's tool. Then tokens the resource must refuse (for
 * another resource, expired, garbage) are refused with the right `WWW-Authenticate`.
 *
 * What each step needs of the gateway:
 * - the 401 challenge and the resource metadata: protected resources (proxy/resource-tokens.ts,
 *   routes/protected-resource-metadata.ts);
 * - the authorization server's metadata at `/.well-known/oauth-authorization-server`, the
 *   authorize endpoint and the consent page: the authorize part;
 * - dynamic registration (DYNAMIC_CLIENT_REGISTRATION=open) of a public client with a loopback
 *   redirect URI: the clients part;
 * - the code exchange, issuing a token whose `aud` is the resource: the token part.
 * The tests that mint a grant token themselves (with the gateway's own signing key, which this
 * file chooses) need only the first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { decodeJwt, type JWK } from 'jose';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningJwk } from '../../src/keys/generate-jwk';
import { keyringFromJwks } from '../../src/keys/keyring';
import { issueGrantToken } from '../../src/tokens/grant-token';
import { CHROMIUM, startGateway, type Gateway } from './harness';
import { startMcpServer, type McpOrigin } from './interop/mcp-server';
import { startOrigin, type Origin } from './interop/origin';

const email = `mcp-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery staple';

let gw: Gateway;
let mcp: McpOrigin;
let callback: Origin;
let context: BrowserContext;
let profileDir: string;
let signingKey: JWK;
let user: { id: string; sid: string };

/** The authorization responses the loopback redirect URI received, in order. */
const redirects: URLSearchParams[] = [];

const mcpUrl = () => new URL(`${gw.url}/mcp`);
const metadataUrl = (path: string) => `${gw.url}/.well-known/oauth-protected-resource${path}`;

beforeAll(async () => {
  mcp = await startMcpServer();
  callback = await startOrigin((req: IncomingMessage, res: ServerResponse) => {
    // Only the redirect itself: the browser also asks this origin for its favicon.
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/callback') redirects.push(url.searchParams);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('You can close this window.');
  });
  signingKey = await generateSigningJwk();
  const routes = [
    { path: '/mcp', origin: mcp.url, auth: 'required', resource: 'mcp' },
    { path: '/other-mcp', origin: mcp.url, auth: 'required', resource: 'mcp' },
  ];
  gw = await startGateway({ vars: { ROUTES: JSON.stringify(routes), DYNAMIC_CLIENT_REGISTRATION: 'open', SIGNING_KEYS: JSON.stringify({ keys: [signingKey] }) } });
  const registered = await fetch(`${gw.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) });
  expect(registered.status, await registered.clone().text()).toBe(201);
  const { access_token } = (await registered.json()) as { access_token: string };
  const claims = decodeJwt<{ sub: string; sid: string }>(access_token);
  user = { id: claims.sub, sid: claims.sid };
  profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, { ...CHROMIUM });
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
  await mcp?.stop();
  await callback?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/**
 * The MCP client's side of OAuth, as the SDK asks an application to provide it: storage for the
 * registration, tokens and PKCE verifier, and the user agent (here Chromium, which signs in and
 * clicks Allow on the consent page, then lands on the loopback redirect URI).
 */
class ChromiumOAuthProvider implements OAuthClientProvider {
  private client: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = '';
  private sentState = '';
  /** Every authorization URL the SDK sent the user agent to. */
  readonly authorizationUrls: URL[] = [];

  get redirectUrl(): string {
    return `http://127.0.0.1:${callback.port}/callback`;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'Gatehouse e2e MCP client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state(): string {
    this.sentState = crypto.randomUUID();
    return this.sentState;
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }

  tokens() {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }

  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }

  codeVerifier() {
    return this.verifier;
  }

  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    const page = await context.newPage();
    try {
      const before = redirects.length;
      await page.goto(url.href);
      // The gateway sends a browser without a session to sign in first, then back to authorize.
      if (await page.locator('#login-email').isVisible()) {
        await page.locator('#login-email').fill(email);
        await page.locator('#login-password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      }
      await page.getByRole('button', { name: /^Allow/ }).click();
      await page.waitForURL((u) => u.href.startsWith(this.redirectUrl));
      expect(redirects.length).toBe(before + 1);
    } finally {
      await page.close();
    }
  }

  /** The code of the last authorization response, once its state is checked. */
  authorizationCode(): string {
    const response = redirects.at(-1);
    if (!response) throw new Error('the authorization server never redirected back');
    expect(response.get('state')).toBe(this.sentState);
    expect(response.get('error'), response.get('error_description') ?? '').toBeNull();
    return response.get('code') ?? '';
  }
}

/** A provider holding a token it did not get through a flow: the SDK's client just presents it. */
function fixedTokenProvider(token: string): OAuthClientProvider {
  return {
    redirectUrl: undefined,
    clientMetadata: { redirect_uris: [] },
    clientInformation: () => undefined,
    tokens: () => ({ access_token: token, token_type: 'Bearer' }),
    saveTokens: () => undefined,
    redirectToAuthorization: () => {
      throw new Error('this provider never authorizes');
    },
    saveCodeVerifier: () => undefined,
    codeVerifier: () => '',
  };
}

/** Signs a grant token with the gateway's own key, as the token endpoint would for this user. */
async function mintGrantToken(audience: string, options: { now?: number } = {}): Promise<string> {
  const keyring = await keyringFromJwks({ keys: [signingKey] });
  const issued = await issueGrantToken(
    keyring,
    { issuer: gw.url, audience, subject: user.id, sessionId: user.sid, clientId: 'cli_e2eminted', clientEpoch: 'e2e', grantId: 'grt_e2eminted', scope: '', ttlSeconds: 300, authTime: Math.floor(Date.now() / 1000) },
    options.now,
  );
  return issued.token;
}

/** An MCP `initialize` POST as the SDK's transport sends it, with the headers given. */
function initialize(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
}

/** The parameters of a Bearer challenge. */
function challenge(r: Response): Record<string, string> {
  const header = r.headers.get('www-authenticate') ?? '';
  expect(header).toMatch(/^Bearer /);
  return Object.fromEntries([...header.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

async function callWhoami(provider: OAuthClientProvider): Promise<{ email: string; client_id: string }> {
  const client = new McpClient({ name: 'gatehouse-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl(), { authProvider: provider }));
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const content = result.content as { type: string; text: string }[];
    return JSON.parse(content[0]!.text) as { email: string; client_id: string };
  } finally {
    await client.close();
  }
}

describe('an MCP server behind a resource route', () => {
  // Needs: protected resources only.
  it('answers an unauthenticated call with 401 pointing to its metadata, which names the gateway as authorization server', async () => {
    const r = await initialize('/mcp');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl('/mcp')}"`);
    const metadata = await fetch(metadataUrl('/mcp'));
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({ resource: `${gw.url}/mcp`, authorization_servers: [gw.url], bearer_methods_supported: ['header'] });
    expect(mcp.seen).toHaveLength(0);
  });

  // Needs: protected resources only (the token is minted here with the gateway's key).
  it('lets the SDK\'s client call the tool with a grant token for the resource; the server sees the user and client, never the token', async () => {
    const token = await mintGrantToken(`${gw.url}/mcp`);
    const who = await callWhoami(fixedTokenProvider(token));
    expect(who).toMatchObject({ email, client_id: 'cli_e2eminted' });
    expect(mcp.seen.length).toBeGreaterThan(0);
    expect(mcp.seen.every((s) => s.authorization === undefined)).toBe(true);
  });

  // Needs every part: authorization server metadata and authorize with consent (authorize part),
  // dynamic registration (clients part), the code exchange (token part).
  it('the SDK\'s client discovers, registers, authorizes with PKCE in Chromium, exchanges the code and calls the tool', async () => {
    const provider = new ChromiumOAuthProvider();
    const transport = new StreamableHTTPClientTransport(mcpUrl(), { authProvider: provider });
    const first = new McpClient({ name: 'gatehouse-e2e', version: '1.0.0' });
    // The first connection gets the 401, discovers, registers and sends Chromium to authorize.
    await expect(first.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(provider.clientInformation()?.client_id).toMatch(/^cli_/);
    const authorization = provider.authorizationUrls.at(-1)!;
    expect(authorization.origin).toBe(gw.url);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('resource')).toBe(`${gw.url}/mcp`);
    await transport.finishAuth(provider.authorizationCode());
    const tokens = provider.tokens();
    expect(tokens?.access_token).toBeTruthy();
    const flowToken = tokens!.access_token;
    expect(decodeJwt(flowToken).aud).toBe(`${gw.url}/mcp`);
    const who = await callWhoami(provider);
    expect(who).toMatchObject({ email, client_id: provider.clientInformation()!.client_id });
    // The token one MCP server got does not open another.
    const replayed = await initialize('/other-mcp', { authorization: `Bearer ${flowToken}` });
    expect(replayed.status).toBe(401);
    expect(challenge(replayed)).toMatchObject({ error: 'invalid_token', resource_metadata: metadataUrl('/other-mcp') });
  });

  // Needs: protected resources only (the tokens are minted here).
  it('refuses a token for another resource, an expired one and garbage, each with error="invalid_token" and the metadata', async () => {
    const forOther = await mintGrantToken(`${gw.url}/other-mcp`);
    const expired = await mintGrantToken(`${gw.url}/mcp`, { now: Math.floor(Date.now() / 1000) - 3600 });
    for (const token of [forOther, expired, 'garbage']) {
      const r = await initialize('/mcp', { authorization: `Bearer ${token}` });
      expect(r.status).toBe(401);
      expect(challenge(r)).toMatchObject({ error: 'invalid_token', resource_metadata: metadataUrl('/mcp') });
    }
    // The SDK's client, handed a refused token and no way to authorize, fails rather than call the tool.
    await expect(callWhoami(fixedTokenProvider(expired))).rejects.toThrow();
  });
});
