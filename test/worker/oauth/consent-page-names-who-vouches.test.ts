/**
 * The consent page tells the user who stands behind an app's name: an app an admin registered
 * is shown as it is; one that registered itself (dynamic registration) is marked as not checked
 * by the gateway; one described by a client ID metadata document names the host that serves the
 * document, which is the one thing about it nobody else can claim. A name cannot carry
 * characters that make it read as another (bidirectional overrides, invisible characters).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { clearMetadataDocumentCache } from '../../../src/auth/client-id-metadata';
import { call, makeEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { fakeHost, installFakeNetwork } from '../support/oauth-fakes';
import { authorizeUrl, navigate, signedInBrowser } from './authorize-support';

installFakeNetwork();

const e = makeEnv({ CLIENT_ID_METADATA_DOCUMENTS: 'on', DYNAMIC_CLIENT_REGISTRATION: 'open' });
const DOCUMENT_HOST = 'https://tools.attacker-owned.example';
const DOCUMENT_URL = `${DOCUMENT_HOST}/oauth/client.json`;
fakeHost(DOCUMENT_HOST, () =>
  Response.json({ client_id: DOCUMENT_URL, client_name: 'Visual Studio Code', redirect_uris: ['http://127.0.0.1:33418/callback'] }),
);

beforeEach(() => clearMetadataDocumentCache());

async function consentHtml(url: string): Promise<string> {
  const { jar } = await signedInBrowser(e);
  const r = await navigate(e, url, jar);
  expect(r.status, r.headers.get('location') ?? '').toBe(200);
  return r.text();
}

describe('the consent page names who vouches for the app', () => {
  it('an app described by a metadata document: the document’s host is shown, and the name is marked as the app’s own claim', async () => {
    const { client } = await seedClient();
    const html = await consentHtml(authorizeUrl(client, { client_id: DOCUMENT_URL, redirect_uri: 'http://127.0.0.1:33418/callback', scope: 'openid' }));
    expect(html).toContain('Visual Studio Code');
    expect(html).toMatch(/id="consent-vouched"[^>]*>[^<]*<[^>]*>tools\.attacker-owned\.example</);
    expect(html).toContain('id="consent-unverified"');
  });

  it('an app that registered itself is marked as not checked; one an admin registered is not', async () => {
    const { client: dynamic } = await seedClient({ name: 'Gatehouse Admin', source: 'dynamic' });
    const dynamicPage = await consentHtml(authorizeUrl(dynamic));
    expect(dynamicPage).toContain('id="consent-unverified"');
    const { client: admin } = await seedClient({ name: 'Payroll' });
    const adminPage = await consentHtml(authorizeUrl(admin));
    expect(adminPage).not.toContain('id="consent-unverified"');
    expect(adminPage).not.toContain('id="consent-vouched"');
  });
});

describe('an app’s name reads as what it is', () => {
  const spoofing = [
    ['a right-to-left override', 'Acme \u202Enimda\u202C'],
    ['a bidirectional isolate', 'Acme \u2067Admin\u2069'],
    ['a zero-width space', 'Gate\u200Bhouse'],
    ['a C1 control', 'Acme\u0085Admin'],
    ['a byte order mark inside it', 'Gate\uFEFFhouse'],
  ] as const;

  it.each(spoofing)('dynamic registration refuses a client_name with %s', async (_, name) => {
    const r = await call('/auth/oauth/register', { env: e, json: { client_name: name, redirect_uris: ['http://127.0.0.1:9000/cb'], token_endpoint_auth_method: 'none' } });
    expect(r.status).toBe(400);
    const body = await r.json<{ error: string; invalid_fields: Record<string, string> }>();
    expect(body.error).toBe('invalid_client_metadata');
    expect(Object.keys(body.invalid_fields)).toContain('client_name');
  });

  it('a name in another script, with its own spaces and punctuation, is still accepted', async () => {
    const r = await call('/auth/oauth/register', { env: e, json: { client_name: 'Café – 日本語 (β)', redirect_uris: ['http://127.0.0.1:9000/cb'], token_endpoint_auth_method: 'none' } });
    expect(r.status, await r.clone().text()).toBe(201);
  });
});
