/**
 * Client ID metadata documents: a client_id that is an https URL is the client's own JSON
 * document, fetched when named (on with open dynamic registration, or alone by
 * CLIENT_ID_METADATA_DOCUMENTS), bounded (https, public hosts, no redirects, 5 KiB, 5 s), and
 * accepted only when it names itself and obeys the rules of any other dynamic client.
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { beforeEach, describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../../src/auth/client-assertion';
import { clearMetadataDocumentCache } from '../../../src/auth/client-id-metadata';
import { randomId } from '../../../src/util/random';
import { authenticateAt, findClientAt } from '../support/client-auth';
import { makeEnv, PUBLIC_URL } from '../support/helpers';
import { fakeHost, installFakeNetwork, requests } from '../support/oauth-fakes';

installFakeNetwork();

const HOST = 'https://mcp-client.example';
const on = makeEnv({ CLIENT_ID_METADATA_DOCUMENTS: 'on' });
const documents = new Map<string, (request: Request) => Response | Promise<Response>>();
fakeHost(HOST, (request) => documents.get(new URL(request.url).pathname)?.(request) ?? new Response('not here', { status: 404 }));

const json = (body: unknown, init: ResponseInit = {}) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' }, ...init });

let n = 0;
/** A fresh document URL on the fake host, serving `doc(url)`. */
function serve(doc: (url: string, request: Request) => unknown): string {
  n += 1;
  const path = `/clients/app-${n}.json`;
  const url = `${HOST}${path}`;
  documents.set(path, async (request) => {
    const body = await doc(url, request);
    return body instanceof Response ? body : json(body);
  });
  return url;
}

const valid = (url: string) => ({ client_id: url, client_name: 'Some MCP client', redirect_uris: ['http://127.0.0.1:6274/oauth/callback'], grant_types: ['authorization_code', 'refresh_token'] });
const fetched = (url: string) => requests.filter((r) => r.url === url).length;

beforeEach(() => {
  clearMetadataDocumentCache();
  requests.length = 0;
});

describe('client ID metadata documents', () => {
  it('a document that names itself is a public, dynamic client with a stable epoch; it authenticates with none; cached briefly', async () => {
    const url = serve(valid);
    const client = await findClientAt(url, on);
    expect(client).toMatchObject({
      id: url,
      name: 'Some MCP client',
      kind: 'public',
      authMethod: 'none',
      secretHash: null,
      redirectUris: ['http://127.0.0.1:6274/oauth/callback'],
      grantTypes: ['authorization_code', 'refresh_token'],
      allowedAudiences: [],
      firstParty: false,
      source: 'dynamic',
      disabledAt: null,
      tokenEpoch: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
    });
    expect((await findClientAt(url, on))!.tokenEpoch).toBe(client!.tokenEpoch);
    expect(fetched(url)).toBe(1);
    clearMetadataDocumentCache();
    expect((await findClientAt(url, on))!.tokenEpoch).toBe(client!.tokenEpoch);
    expect((await authenticateAt({ client_id: url }, { env: on })).status).toBe(200);
  });

  it('are off unless dynamic registration is open or CLIENT_ID_METADATA_DOCUMENTS is on; off beats open registration', async () => {
    const url = serve(valid);
    expect(await findClientAt(url)).toBeNull();
    expect(await findClientAt(url, makeEnv({ CLIENT_ID_METADATA_DOCUMENTS: 'off', DYNAMIC_CLIENT_REGISTRATION: 'open' }))).toBeNull();
    expect(fetched(url)).toBe(0);
    expect(await findClientAt(url, makeEnv({ DYNAMIC_CLIENT_REGISTRATION: 'open' }))).toMatchObject({ id: url });
  });

  it('refuses a document whose client_id is another URL, one with a secret method, bad redirect URIs, or no JSON', async () => {
    const refusedDocs = [
      serve((url) => ({ ...valid(url), client_id: `${HOST}/clients/someone-else.json` })),
      serve((url) => ({ ...valid(url), token_endpoint_auth_method: 'client_secret_basic' })),
      serve((url) => ({ ...valid(url), redirect_uris: ['http://evil.example/cb'] })),
      serve((url) => ({ ...valid(url), redirect_uris: ['https://app.example/cb#frag'] })),
      serve((url) => ({ ...valid(url), grant_types: ['client_credentials'] })),
      serve((url) => ({ ...valid(url), jwks_uri: 'https://mcp-client.example/jwks' })),
      serve(() => new Response('<html>hello</html>', { status: 200, headers: { 'content-type': 'text/html' } })),
      serve(() => new Response('gone', { status: 404 })),
    ];
    for (const url of refusedDocs) {
      expect(await findClientAt(url, on), url).toBeNull();
      expect((await authenticateAt({ client_id: url }, { env: on })).status).toBe(401);
    }
  });

  it('refuses a document larger than 5 KiB, read no further than the cap', async () => {
    let pulled = 0;
    const big = serve((url) => {
      const text = JSON.stringify({ ...valid(url), padding: 'x'.repeat(64 * 1024) });
      const bytes = new TextEncoder().encode(text);
      let at = 0;
      // No Content-Length: only reading tells how big it is.
      return new Response(
        new ReadableStream({
          pull(controller) {
            if (at >= bytes.length) return controller.close();
            controller.enqueue(bytes.slice(at, at + 1024));
            at += 1024;
            pulled = at;
          },
        }),
        { status: 200, headers: { 'content-type': 'application/json' } },
      );
    });
    expect(await findClientAt(big, on)).toBeNull();
    expect(pulled).toBeLessThan(16 * 1024);
    const declared = serve((url) => json(valid(url), { headers: { 'content-length': String(6 * 1024) } }));
    expect(await findClientAt(declared, on)).toBeNull();
    // Just under the cap is fine.
    const fits = serve((url) => ({ ...valid(url), padding: 'x'.repeat(4 * 1024) }));
    expect(await findClientAt(fits, on)).toMatchObject({ id: fits });
  });

  it('never follows a redirect, and fetches nothing that is not https, an IP address or a local name', async () => {
    const target = serve(valid);
    const redirecting = serve(() => new Response(null, { status: 302, headers: { location: target } }));
    expect(await findClientAt(redirecting, on)).toBeNull();
    expect(fetched(target)).toBe(0);
    requests.length = 0;
    fakeHost('http://mcp-client.example', () => json({}));
    for (const id of ['http://mcp-client.example/clients/app.json', 'https://127.0.0.1/client.json', 'https://[::1]/client.json', 'https://10.0.0.8/client.json', 'https://localhost/client.json', 'https://metadata.internal/client.json', 'https://intranet/client.json', `${HOST}/`, `${HOST}/a/../b.json`]) {
      expect(await findClientAt(id, on), id).toBeNull();
    }
    expect(requests).toEqual([]);
  });

  it('fetches nothing from the gateway’s own host or an app host: a file there would be vouched for by the operator’s name', async () => {
    const withHosts = makeEnv({
      CLIENT_ID_METADATA_DOCUMENTS: 'on',
      ROUTES: JSON.stringify([
        { host: 'wiki.example.com', path: '/', origin: 'https://wiki-origin.example.net', auth: 'public' },
        { host: '*.apps.example.com', path: '/', origin: 'https://apps-origin.example.net', auth: 'public' },
        { path: '/files', origin: 'https://files-origin.example.net', auth: 'public' },
      ]),
    });
    const ids = ['https://gate.example.com/files/client.json', 'https://wiki.example.com/raw/client.json', 'https://notes.apps.example.com/client.json'];
    for (const id of ids) fakeHost(new URL(id).origin, (request) => json(valid(request.url)));
    for (const id of ids) expect(await findClientAt(id, withHosts), id).toBeNull();
    expect(requests).toEqual([]);
  });

  it('in development a local host may serve documents', async () => {
    const dev = makeEnv({ ENVIRONMENT: 'development', CLIENT_ID_METADATA_DOCUMENTS: 'on' });
    const local = 'https://localhost:8443';
    fakeHost(local, (request) => json(valid(request.url)));
    expect(await findClientAt(`${local}/client.json`, dev)).toMatchObject({ id: `${local}/client.json` });
  });

  it('gives up on a host that does not answer within 5 seconds', async () => {
    // Never answers; ends only when the caller gives up through its AbortSignal.
    const slow = serve((_, request) => new Promise<Response>((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason))));
    const started = Date.now();
    expect(await findClientAt(slow, on)).toBeNull();
    expect(Date.now() - started).toBeLessThan(7_000);
  }, 15_000);

  it('a document with inline keys is a private_key_jwt client, proven by an assertion signed with them', async () => {
    const keys = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(keys.publicKey);
    const url = serve((u) => ({ ...valid(u), token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } }));
    expect(await findClientAt(url, on)).toMatchObject({ id: url, kind: 'confidential', authMethod: 'private_key_jwt' });
    const sign = (key: CryptoKey) => new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(url).setSubject(url).setAudience(PUBLIC_URL).setJti(randomId()).setExpirationTime('1m').sign(key);
    const present = async (key: CryptoKey) => authenticateAt({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: await sign(key) }, { env: on });
    expect((await present(keys.privateKey)).status).toBe(200);
    expect((await present((await generateKeyPair('ES256')).privateKey)).status).toBe(401);
    expect((await authenticateAt({ client_id: url }, { env: on })).status).toBe(401);
  });
});
