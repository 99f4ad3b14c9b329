/**
 * SCIM discovery (RFC 7644 §4): what this provider supports, for directories that read it.
 * The schemas list only the attributes Gatehouse keeps (auth/scim-users.ts, auth/scim-groups.ts).
 */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../env';
import { GROUP_SCHEMA, LIST_SCHEMA, MAX_PAGE, SCIM_CONTENT_TYPE, USER_SCHEMA } from '../auth/scim-protocol';

const base = (c: Context<AppEnv>) => `${c.get('config').PUBLIC_URL}${c.get('config').AUTH_PREFIX}/scim/v2`;
const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { 'content-type': SCIM_CONTENT_TYPE, 'cache-control': 'no-store' } });

const attribute = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'string',
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...extra,
});

const USER_ATTRIBUTES = [
  attribute('userName', { required: true, uniqueness: 'server', description: 'The email address of the account.' }),
  attribute('externalId', { caseExact: true }),
  attribute('displayName'),
  attribute('name', { type: 'complex', subAttributes: [attribute('formatted'), attribute('givenName', { mutability: 'writeOnly', returned: 'never' }), attribute('familyName', { mutability: 'writeOnly', returned: 'never' })] }),
  attribute('emails', { type: 'complex', multiValued: true, mutability: 'readOnly', description: 'The account address (userName), as the work and primary email.', subAttributes: [attribute('value'), attribute('type'), attribute('primary', { type: 'boolean' })] }),
  attribute('active', { type: 'boolean', description: 'False disables the account and ends every session at once.' }),
];

const GROUP_ATTRIBUTES = [
  attribute('displayName', { required: true, uniqueness: 'server' }),
  attribute('externalId', { caseExact: true }),
  attribute('members', { type: 'complex', multiValued: true, subAttributes: [attribute('value', { mutability: 'immutable', caseExact: true }), attribute('display', { mutability: 'readOnly' }), attribute('$ref', { type: 'reference', mutability: 'readOnly' })] }),
];

const schema = (c: Context<AppEnv>, id: string, name: string, attributes: unknown[]) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
  id,
  name,
  attributes,
  meta: { resourceType: 'Schema', location: `${base(c)}/Schemas/${id}` },
});

const resourceType = (c: Context<AppEnv>, name: 'User' | 'Group', schemaId: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
  id: name,
  name,
  endpoint: `/${name}s`,
  schema: schemaId,
  meta: { resourceType: 'ResourceType', location: `${base(c)}/ResourceTypes/${name}` },
});

const list = (resources: unknown[]) => ({ schemas: [LIST_SCHEMA], totalResults: resources.length, startIndex: 1, itemsPerPage: resources.length, Resources: resources });

const schemas = (c: Context<AppEnv>) => [schema(c, USER_SCHEMA, 'User', USER_ATTRIBUTES), schema(c, GROUP_SCHEMA, 'Group', GROUP_ATTRIBUTES)];
const resourceTypes = (c: Context<AppEnv>) => [resourceType(c, 'User', USER_SCHEMA), resourceType(c, 'Group', GROUP_SCHEMA)];

export const discoveryRoutes = new Hono<AppEnv>()
  .get('/ServiceProviderConfig', (c) =>
    json({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
      patch: { supported: true },
      bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
      filter: { supported: true, maxResults: MAX_PAGE },
      changePassword: { supported: false },
      sort: { supported: false },
      etag: { supported: false },
      authenticationSchemes: [{ type: 'oauthbearertoken', name: 'Bearer token', description: 'The SCIM_TOKEN secret, or a SCIM token an administrator created, as a bearer token.', primary: true }],
      meta: { resourceType: 'ServiceProviderConfig', location: `${base(c)}/ServiceProviderConfig` },
    }),
  )
  .get('/ResourceTypes', (c) => json(list(resourceTypes(c))))
  .get('/ResourceTypes/:name', (c) => {
    const found = resourceTypes(c).find((r) => r.id === c.req.param('name'));
    return found ? json(found) : notFound();
  })
  .get('/Schemas', (c) => json(list(schemas(c))))
  .get('/Schemas/:id', (c) => {
    const found = schemas(c).find((s) => s.id === c.req.param('id'));
    return found ? json(found) : notFound();
  });

function notFound(): Response {
  return new Response(JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '404', detail: 'No such resource.' }), {
    status: 404,
    headers: { 'content-type': SCIM_CONTENT_TYPE },
  });
}
