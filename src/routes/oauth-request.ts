/**
 * Reading a request at the token, revocation and introspection endpoints: the form body
 * (RFC 6749 §3.2: `application/x-www-form-urlencoded` only, each parameter at most once) and
 * how the client authenticates (RFC 6749 §2.3.1: HTTP Basic with form-urlencoded id and
 * secret, or `client_secret` in the form; `client_assertion` for private_key_jwt, RFC 7523;
 * only `client_id` for a public client). A client that uses two ways at once is refused
 * (§2.3: "MUST NOT use more than one authentication method in each request").
 */
import type { Context } from 'hono';
import { assertionClientId } from '../auth/client-assertion';
import { authenticateClient, type ClientCredentials, type OAuthClient } from '../auth/oauth-clients';
import type { AppEnv } from '../env';
import { ApiError, badRequest } from '../http/errors';
import { bodyText } from '../http/body';

/** Longest parameter value read (codes, tokens, verifiers, assertions are all far shorter). */
const MAX_VALUE = 8192;

/** The form's parameters, each given once; `invalid_request` for anything else. */
export async function readOAuthForm(c: Context<AppEnv>): Promise<Map<string, string>> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw badRequest('Send the parameters as application/x-www-form-urlencoded.');
  const text = await bodyText(c);
  const form = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(text)) {
    if (form.has(key)) throw badRequest(`The parameter "${key}" is given more than once.`);
    if (value.length > MAX_VALUE) throw badRequest(`The parameter "${key}" is too long.`);
    // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    if (value !== '') form.set(key, value);
  }
  return form;
}

/** A required parameter, or `invalid_request` naming it. */
export function required(form: Map<string, string>, name: string): string {
  const value = form.get(name);
  if (value === undefined) throw badRequest(`The parameter "${name}" is required.`);
  return value;
}

/** The challenge RFC 6749 §5.2 asks for with a 401 `invalid_client`. */
export const basicChallenge = (c: Context<AppEnv>) => `Basic realm="${c.get('config').PUBLIC_URL}"`;

/** What the request presents to authenticate its client; `invalid_request` for two ways at once or a malformed one. */
function presentedCredentials(c: Context<AppEnv>, form: Map<string, string>): ClientCredentials {
  const header = c.req.header('authorization');
  const basic = header !== undefined && /^basic /i.test(header) ? header.slice(6).trim() : undefined;
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  const ways = [basic !== undefined, secret !== undefined, assertion !== undefined].filter(Boolean).length;
  if (ways > 1) throw badRequest('Authenticate the client one way only (HTTP Basic, client_secret, or client_assertion).');
  const formId = form.get('client_id');
  if (basic !== undefined) {
    let id: string;
    let pass: string;
    try {
      const decoded = atob(basic);
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new Error('no colon');
      // §2.3.1: both are form-urlencoded before Basic encodes them.
      id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
      pass = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    } catch {
      throw new ApiError('invalid_client', 'The Authorization header is not valid HTTP Basic credentials.', { headers: { 'www-authenticate': basicChallenge(c) } });
    }
    if (formId !== undefined && formId !== id) throw badRequest('The client_id differs from the one in the Authorization header.');
    return { clientId: id, secret: pass, method: 'client_secret_basic' };
  }
  if (assertion !== undefined) {
    // The client it claims to be (its unverified `sub`, which client_id must equal): its keys then verify it.
    const clientId = assertionClientId({ client_assertion: assertion, client_id: formId, client_assertion_type: form.get('client_assertion_type') });
    return { clientId, method: 'private_key_jwt', assertion };
  }
  if (formId === undefined) throw new ApiError('invalid_client', 'Client authentication is required.', { headers: { 'www-authenticate': basicChallenge(c) } });
  return secret !== undefined ? { clientId: formId, secret, method: 'client_secret_post' } : { clientId: formId, method: 'none' };
}

/** The client the request authenticates, or `invalid_client` (401, with a Basic challenge). */
export async function requestClient(c: Context<AppEnv>, form: Map<string, string>): Promise<OAuthClient> {
  const credentials = presentedCredentials(c, form);
  try {
    return await authenticateClient(c, credentials);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_client') {
      throw new ApiError('invalid_client', e.description, { headers: { 'www-authenticate': basicChallenge(c), ...e.extra.headers } });
    }
    throw e;
  }
}
