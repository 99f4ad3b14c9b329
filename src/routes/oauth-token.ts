/**
 * `POST ${AUTH_PREFIX}/token` (RFC 6749 §3.2): the client authenticates (HTTP Basic or
 * `client_secret_post`, auth/oauth-clients.ts), then its grant is dispatched. This version
 * serves the client-credentials grant (auth/client-credentials.ts); every other grant type is
 * `unsupported_grant_type`.
 */
import { Hono, type Context } from 'hono';
import { authenticateClient, type ClientCredentials } from '../auth/oauth-clients';
import { clientCredentialsGrant } from '../auth/client-credentials';
import type { AppEnv } from '../env';
import { ApiError, badRequest } from '../http/errors';

/** The request's form (RFC 6749 §3.2: application/x-www-form-urlencoded only). */
async function tokenForm(c: Context<AppEnv>): Promise<URLSearchParams> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new ApiError('unsupported_media_type', 'Send the token request as application/x-www-form-urlencoded.');
  // Read as bytes: the runtime warns when text() is called on a form body.
  return new URLSearchParams(new TextDecoder().decode(await c.req.arrayBuffer()));
}

/** RFC 6749 §2.3.1: the Basic credentials are each form-urlencoded before being joined. */
function basicCredentials(header: string): ClientCredentials | null {
  const match = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!match) return null;
  let decoded: string;
  try {
    decoded = atob(match[1]!);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  try {
    const unform = (s: string) => decodeURIComponent(s.replaceAll('+', ' '));
    return { clientId: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)), method: 'client_secret_basic' };
  } catch {
    return null;
  }
}

/** How the client presented itself: Basic, or `client_id` (with `client_secret`) in the form; never both. */
function presentedClient(c: Context<AppEnv>, form: URLSearchParams): ClientCredentials {
  const header = c.req.header('authorization');
  const formId = form.get('client_id');
  const formSecret = form.get('client_secret');
  if (header !== undefined) {
    const basic = basicCredentials(header);
    if (!basic || formSecret !== null || (formId !== null && formId !== basic.clientId)) throw new ApiError('invalid_client', 'Client authentication failed.');
    return basic;
  }
  if (formId === null) throw new ApiError('invalid_client', 'Client authentication failed.');
  return formSecret === null ? { clientId: formId, method: 'none' } : { clientId: formId, secret: formSecret, method: 'client_secret_post' };
}

export const oauthTokenRoutes = new Hono<AppEnv>().post('/token', async (c) => {
  const form = await tokenForm(c);
  const grantType = form.get('grant_type');
  if (!grantType) throw badRequest('grant_type is required.');
  const client = await authenticateClient(c, presentedClient(c, form));
  if (grantType === 'client_credentials') return clientCredentialsGrant(c, client, form);
  throw new ApiError('unsupported_grant_type', `The grant type "${grantType}" is not supported.`);
});
