/**
 * Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, as MCP clients
 * use them): a `client_id` that is an https URL with a path names a JSON document, served
 * there, that describes the client. Such a client is never stored: it is fetched when named,
 * and kept briefly per isolate. It is public (PKCE, `token_endpoint_auth_method` `none`) or
 * proves itself with `private_key_jwt` and inline keys; never a shared secret.
 *
 * The fetch is the gateway calling a URL anyone may name, so it is bounded (SSRF): https only,
 * no IP literals and no local names (except in development), not the gateway's host or an app
 * host, no redirects, 5 seconds, 5 KiB.
 * A Worker's fetch reaches only the public internet, so a name resolving to a private address
 * reaches nothing of the operator's either.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { log } from '../observability/log';
import type { OAuthClient } from '../storage/oauth-clients';
import { cappedText } from '../util/capped-text';
import { sha256 } from '../util/random';
import { nowSeconds } from '../util/time';
import { clientName, clientProblems, dynamicRedirectRules, operatorHost, parseJwks, selfDescribedMetadata, uriList, type ClientMetadata } from './client-metadata';

export const METADATA_DOCUMENT_DEADLINE_MS = 5_000;
export const METADATA_DOCUMENT_MAX_BYTES = 5 * 1024;
/** How long a fetched document (or a failure to get one) is reused in this isolate. */
const CACHE_SECONDS = 60;
const FAILURE_CACHE_SECONDS = 10;
const CACHE_MAX_ENTRIES = 256;

/** True when client ID metadata documents are accepted (CLIENT_ID_METADATA_DOCUMENTS, `auto` following dynamic registration). */
export function metadataDocumentsEnabled(config: Pick<Config, 'CLIENT_ID_METADATA_DOCUMENTS' | 'DYNAMIC_CLIENT_REGISTRATION'>): boolean {
  return config.CLIENT_ID_METADATA_DOCUMENTS === 'on' || (config.CLIENT_ID_METADATA_DOCUMENTS === 'auto' && config.DYNAMIC_CLIENT_REGISTRATION === 'open');
}

/**
 * True when `clientId` has the shape of a metadata document's URL: https, a path, no fragment
 * or user info, in the URL parser's normal form (so no dot segments, no default port).
 */
export function isMetadataDocumentUrl(clientId: string): boolean {
  if (!clientId.startsWith('https://') || !URL.canParse(clientId)) return false;
  const url = new URL(clientId);
  return url.href === clientId && url.pathname !== '/' && url.hash === '' && url.username === '' && url.password === '';
}

/** Names that never lead to a public host. */
const LOCAL_NAME = /(^|\.)(localhost|local|internal|home\.arpa|arpa)$/i;
const IP_LITERAL = /^(\[.*\]|\d+(\.\d+){0,3}|0x[0-9a-f.]+)$/i;

/** Why the gateway will not fetch `url`, or null. */
function hostProblem(url: URL, development: boolean): string | null {
  if (development) return null;
  if (IP_LITERAL.test(url.hostname)) return 'an IP address';
  if (LOCAL_NAME.test(url.hostname) || !url.hostname.includes('.')) return 'a local name';
  return null;
}

const documentSchema = v.looseObject({
  client_id: v.string(),
  client_name: v.optional(clientName),
  redirect_uris: v.pipe(uriList(), v.minLength(1, 'must name at least one URI')),
  post_logout_redirect_uris: v.optional(uriList(), []),
  token_endpoint_auth_method: v.optional(v.picklist(['none', 'private_key_jwt'], 'must be none or private_key_jwt (no shared secrets)'), 'none'),
  grant_types: v.optional(v.array(v.picklist(['authorization_code', 'refresh_token'], 'must be authorization_code or refresh_token')), ['authorization_code']),
  response_types: v.optional(v.array(v.literal('code', 'must be code')), ['code']),
  scope: v.optional(v.pipe(v.string(), v.maxLength(1000))),
  jwks: v.optional(v.unknown()),
  jwks_uri: v.optional(v.never('is not supported: put the keys inline as jwks')),
});

const cache = new Map<string, { client: OAuthClient | null; until: number }>();

function remember(url: string, client: OAuthClient | null): OAuthClient | null {
  cache.delete(url);
  cache.set(url, { client, until: Date.now() + (client ? CACHE_SECONDS : FAILURE_CACHE_SECONDS) * 1000 });
  if (cache.size > CACHE_MAX_ENTRIES) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  return client;
}

/** Forgets every document this isolate holds (tests). */
export function clearMetadataDocumentCache(): void {
  cache.clear();
}

/** The document's text: 200, JSON, within the size cap and the deadline, no redirect; else why not. */
async function fetchDocument(url: string): Promise<{ text: string } | { problem: string }> {
  const deadline = AbortSignal.timeout(METADATA_DOCUMENT_DEADLINE_MS);
  try {
    const response = await fetch(url, { redirect: 'manual', signal: deadline, headers: { accept: 'application/json', 'user-agent': 'Gatehouse' } });
    if (response.status !== 200) {
      await response.body?.cancel();
      return { problem: response.status >= 300 && response.status < 400 ? 'answered with a redirect' : `answered ${response.status}` };
    }
    if (Number(response.headers.get('content-length') ?? '0') > METADATA_DOCUMENT_MAX_BYTES) {
      await response.body?.cancel();
      return { problem: 'is too large' };
    }
    const text = await cappedText(response.body, METADATA_DOCUMENT_MAX_BYTES, { signal: deadline });
    return text === null ? { problem: 'is too large' } : { text };
  } catch (e) {
    return { problem: deadline.aborted ? 'did not answer in time' : `could not be fetched (${e instanceof Error ? e.message : String(e)})` };
  }
}

/** The client its metadata document at `url` describes, or null (refused, unreachable, invalid; the reason logged). */
async function loadClient(config: Config, url: string): Promise<OAuthClient | null> {
  const refuse = (reason: string) => {
    log.warn('client_metadata_document_refused', { client_id: url.slice(0, 256), reason });
    return null;
  };
  const host = hostProblem(new URL(url), config.isDevelopment);
  if (host) return refuse(`names ${host}`);
  // The consent page names the document's host as the app's voucher: never the operator's own,
  // where a file someone could place (a proxied route's) would borrow the operator's name.
  // In development, where everything is localhost, as the host rule above.
  if (!config.isDevelopment && operatorHost(new URL(url).hostname, config)) return refuse("names the gateway's host or an app host");
  const fetched = await fetchDocument(url);
  if ('problem' in fetched) return refuse(fetched.problem);
  let data: unknown;
  try {
    data = JSON.parse(fetched.text);
  } catch {
    return refuse('is not JSON');
  }
  const parsed = v.safeParse(documentSchema, data);
  if (!parsed.success) return refuse(parsed.issues.map((i) => `${i.path?.map((p) => String(p.key)).join('.') ?? ''}: ${i.message}`).join('; '));
  const doc = parsed.output;
  if (doc.client_id !== url) return refuse('its client_id is not its own URL');
  let jwks: ClientMetadata['jwks'] = null;
  if (doc.jwks !== undefined) {
    const keys = parseJwks(doc.jwks);
    if ('problems' in keys) return refuse(keys.problems.map((p) => `${p.field}: ${p.message}`).join('; '));
    jwks = keys.jwks;
  }
  const metadata = selfDescribedMetadata(doc, doc.client_name ?? new URL(url).host, jwks);
  const problems = clientProblems(metadata, config, dynamicRedirectRules(config, metadata.kind));
  if (problems.length > 0) return refuse(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  const t = nowSeconds();
  return {
    id: url,
    ...metadata,
    secretHash: null,
    previousSecretHash: null,
    previousSecretExpiresAt: null,
    source: 'dynamic',
    // The same URL always gives the same epoch: its tokens carry one, though it can never be disabled here.
    tokenEpoch: (await sha256(`client-id-metadata:${url}`)).slice(0, 16),
    createdAt: t,
    updatedAt: t,
    disabledAt: null,
  };
}

/** The client `url`'s metadata document describes (from this isolate's cache when recent), or null. */
export async function clientFromMetadataDocument(c: Context<AppEnv>, url: string): Promise<OAuthClient | null> {
  const cached = cache.get(url);
  if (cached && cached.until > Date.now()) return cached.client;
  return remember(url, await loadClient(c.get('config'), url));
}
