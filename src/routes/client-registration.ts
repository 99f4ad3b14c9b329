/**
 * `POST /auth/oauth/register`: dynamic client registration (RFC 7591), when
 * DYNAMIC_CLIENT_REGISTRATION is `open`; otherwise the endpoint does not exist (404, and
 * discovery names no `registration_endpoint`), which is what a client that looks for it
 * expects of a server without one. Rate-limited per IP (`register_client`, app-lazy.ts).
 *
 * A dynamic client is public (`none`) or has a generated secret (`client_secret_basic`, the
 * RFC's default, or `client_secret_post`); never `private_key_jwt`, never client credentials,
 * never first-party (it always meets the consent page), and never allowed an audience of its
 * own: it may ask only for the protected resources the routes declare. Its redirect URIs follow
 * DCR_REDIRECT_URI_POLICY. Unknown metadata is ignored (§2); scopes outside the known set are
 * dropped and the answer says what was registered (§3.2.1).
 */
import { Hono } from 'hono';
import * as v from 'valibot';
import { clientName, clientProblems, dynamicRedirectRules, issueProblems, metadataError, selfDescribedMetadata, uriList } from '../auth/client-metadata';
import { newClient } from '../auth/client-lifecycle';
import { recordEvent } from '../auth/events';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { ApiError, badRequest } from '../http/errors';

/** Redirect URIs a dynamic client may register: fewer than an admin's. */
export const MAX_DYNAMIC_REDIRECT_URIS = 10;

/** True when `/oauth/register` is open (for discovery's `registration_endpoint`). */
export const dynamicRegistrationOpen = (config: Pick<Config, 'DYNAMIC_CLIENT_REGISTRATION'>) => config.DYNAMIC_CLIENT_REGISTRATION === 'open';

const refusedForDynamic = (message: string) => v.optional(v.never(message));

const registrationSchema = v.looseObject({
  redirect_uris: v.optional(uriList(MAX_DYNAMIC_REDIRECT_URIS), []),
  post_logout_redirect_uris: v.optional(uriList(MAX_DYNAMIC_REDIRECT_URIS), []),
  token_endpoint_auth_method: v.optional(
    v.picklist(['none', 'client_secret_basic', 'client_secret_post'], 'must be none, client_secret_basic or client_secret_post (private_key_jwt clients are registered by an admin)'),
    'client_secret_basic',
  ),
  grant_types: v.optional(
    v.pipe(
      v.array(v.picklist(['authorization_code', 'refresh_token'], 'must be authorization_code or refresh_token (client_credentials clients are registered by an admin)')),
      v.minLength(1, 'must name at least one grant type'),
    ),
    ['authorization_code'],
  ),
  response_types: v.optional(v.array(v.literal('code', 'must be code (the only response type)')), ['code']),
  client_name: v.optional(clientName),
  scope: v.optional(v.pipe(v.string('must be space-separated scopes'), v.maxLength(1000, 'is too long'))),
  jwks: refusedForDynamic('is not accepted: a dynamic client authenticates with a secret or not at all'),
  jwks_uri: refusedForDynamic('is not accepted: a dynamic client authenticates with a secret or not at all'),
});

export const clientRegistrationRoutes = new Hono<AppEnv>().post('/oauth/register', async (c) => {
  const config = c.get('config');
  if (!dynamicRegistrationOpen(config)) throw new ApiError('not_found', 'Dynamic client registration is off on this gateway (DYNAMIC_CLIENT_REGISTRATION).');
  const { kind, data } = await readBody(c, v.record(v.string(), v.unknown()));
  if (kind !== 'json') throw badRequest('Send client metadata as application/json (RFC 7591).');
  const parsed = v.safeParse(registrationSchema, data);
  if (!parsed.success) throw metadataError(issueProblems(parsed.issues));
  const doc = parsed.output;
  const name = doc.client_name ?? (doc.redirect_uris[0] && URL.canParse(doc.redirect_uris[0]) ? new URL(doc.redirect_uris[0]).host || 'Unnamed app' : 'Unnamed app');
  const metadata = selfDescribedMetadata(doc, name, null);
  const problems = clientProblems(metadata, config, dynamicRedirectRules(config, metadata.kind));
  if (problems.length > 0) throw metadataError(problems);
  const { client, secret } = await newClient(c, metadata, 'dynamic');
  await recordEvent(c, { event: 'client_registered', outcome: 'success', userId: null, detail: { client_id: client.id, redirect_uris: client.redirectUris } });
  c.header('cache-control', 'no-store');
  return c.json(
    {
      client_id: client.id,
      ...(secret === null ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
      client_id_issued_at: client.createdAt,
      client_name: client.name,
      redirect_uris: client.redirectUris,
      ...(client.postLogoutRedirectUris.length > 0 ? { post_logout_redirect_uris: client.postLogoutRedirectUris } : {}),
      token_endpoint_auth_method: client.authMethod,
      grant_types: client.grantTypes,
      response_types: ['code'],
      scope: client.allowedScopes.join(' '),
    },
    201,
  );
});
