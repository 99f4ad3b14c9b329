/**
 * `/auth/admin/clients`: the apps and machines that use Gatehouse as their authorization
 * server, for admins (mounted behind routes/admin.ts's checks; every call audited with the
 * acting admin). Each action is done by auth/client-administration.ts, which the console's
 * Apps and machines area calls too; a secret is shown once in the answer that creates or
 * rotates it, and kept only as its SHA-256.
 *
 * - `POST /admin/clients`                     register (201, with `client_secret` once)
 * - `GET  /admin/clients?limit=&offset=`      list (no secrets, no hashes)
 * - `GET  /admin/clients/:id`                 one client
 * - `PATCH /admin/clients/:id`                change metadata (not kind, method or secret)
 * - `POST /admin/clients/:id/rotate-secret`   new secret; the old one works `overlap_seconds` more
 * - `POST /admin/clients/:id/disable`         refuse it, and revoke every token it got
 * - `POST /admin/clients/:id/enable`          accept it again (revoked tokens stay revoked)
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import {
  changeClient,
  clientToAdminister,
  disableClientFor,
  enableClientFor,
  listClientsFor,
  overlapEnd,
  overlapSeconds,
  registerClient,
  registrationMetadata,
  rotateSecret,
  viewClient,
} from '../auth/client-administration';
import { metadataError } from '../auth/client-metadata';
import type { AppEnv } from '../env';
import { readBody, readQuery } from '../http/body';
import { badRequest } from '../http/errors';
import type { OAuthClient } from '../storage/oauth-clients';

/** What an admin sees of a client: everything but the secret and its hashes. */
export function clientView(client: OAuthClient) {
  return {
    client_id: client.id,
    name: client.name,
    kind: client.kind,
    token_endpoint_auth_method: client.authMethod,
    has_secret: client.secretHash !== null,
    previous_secret_expires_at: overlapEnd(client),
    jwks: client.jwks,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: client.grantTypes,
    allowed_scopes: client.allowedScopes,
    allowed_audiences: client.allowedAudiences,
    backchannel_logout_uri: client.backchannelLogoutUri,
    first_party: client.firstParty,
    source: client.source,
    disabled: client.disabledAt !== null,
    disabled_at: client.disabledAt,
    created_at: client.createdAt,
    updated_at: client.updatedAt,
  };
}

/** The body as a plain object, or 400 `invalid_request` (not JSON, not an object). */
async function readObject(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  const { kind, data } = await readBody(c, v.record(v.string(), v.unknown()));
  if (kind !== 'json') throw badRequest('Send client metadata as application/json.');
  return data;
}

/** The client the path names (enabled or not), or 404. */
const targetClient = (c: Context<AppEnv>) => clientToAdminister(c, c.req.param('id') ?? '');

const listQuery = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, 'must be a whole number'), v.transform(Number), v.minValue(1), v.maxValue(100, 'must be at most 100')), '50'),
  offset: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, 'must be a whole number'), v.transform(Number)), '0'),
});

const rotateSchema = v.strictObject({ overlap_seconds: overlapSeconds }, () => 'is not a known field');

const adminId = (c: Context<AppEnv>) => c.get('user').id;

export const adminClientRoutes = new Hono<AppEnv>()
  .post('/clients', async (c) => {
    const outcome = registrationMetadata(c, await readObject(c));
    if (outcome.problems) throw metadataError(outcome.problems);
    const { client, secret } = await registerClient(c, outcome.metadata, adminId(c));
    return c.json({ client: clientView(client), ...(secret === null ? {} : { client_secret: secret }) }, 201);
  })
  .get('/clients', async (c) => {
    const { limit, offset } = readQuery(c, listQuery);
    const clients = await listClientsFor(c, { limit: Number(limit), offset: Number(offset) }, adminId(c));
    return c.json({ clients: clients.map(clientView), limit: Number(limit), offset: Number(offset) });
  })
  .get('/clients/:id', async (c) => {
    const client = await targetClient(c);
    await viewClient(c, client, adminId(c));
    return c.json({ client: clientView(client) });
  })
  .patch('/clients/:id', async (c) => {
    const client = await targetClient(c);
    const changed = await changeClient(c, client, await readObject(c), adminId(c));
    if ('problems' in changed) throw metadataError(changed.problems);
    return c.json({ client: clientView(changed.client) });
  })
  .post('/clients/:id/rotate-secret', async (c) => {
    const client = await targetClient(c);
    const { data } = await readBody(c, rotateSchema);
    const rotated = await rotateSecret(c, client, data.overlap_seconds, adminId(c));
    return c.json({ client: clientView(rotated.client), client_secret: rotated.secret, previous_secret_expires_at: rotated.overlapUntil });
  })
  .post('/clients/:id/disable', async (c) => {
    const client = await targetClient(c);
    return c.json({ ok: true, client: clientView(await disableClientFor(c, client, adminId(c))) });
  })
  .post('/clients/:id/enable', async (c) => {
    const client = await targetClient(c);
    return c.json({ ok: true, client: clientView(await enableClientFor(c, client, adminId(c))) });
  });
