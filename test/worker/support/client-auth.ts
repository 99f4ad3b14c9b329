/**
 * Client authentication driven as an endpoint drives it: a small app with the gateway's own
 * configuration middleware and error handler that answers, at the token endpoint's path, who
 * `authenticateClient` says the caller is (HTTP Basic, form secret, only a client_id, or a
 * client assertion), and `findClient` for any id.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { Hono } from 'hono';
import { authenticateClient, findClient, type ClientCredentials } from '../../../src/auth/oauth-clients';
import { assertionClientId } from '../../../src/auth/client-assertion';
import { loadConfig } from '../../../src/config/load';
import type { AppEnv } from '../../../src/env';
import { configure } from '../../../src/middleware/configure';
import { errorHandler } from '../../../src/middleware/error-handler';
import { defaultEnv, PUBLIC_URL, type TestEnv } from './helpers';

export const TOKEN_ENDPOINT = `${PUBLIC_URL}/auth/oauth/token`;

function credentialsFrom(authorization: string | undefined, form: Record<string, string>): ClientCredentials {
  if (authorization?.startsWith('Basic ')) {
    const [id, secret] = atob(authorization.slice(6)).split(':');
    return { clientId: decodeURIComponent(id ?? ''), secret: decodeURIComponent(secret ?? ''), method: 'client_secret_basic' };
  }
  if (form.client_assertion !== undefined) {
    const clientId = assertionClientId({ client_id: form.client_id, client_assertion_type: form.client_assertion_type, client_assertion: form.client_assertion });
    return { clientId, assertion: form.client_assertion, method: 'private_key_jwt', ...(form.client_secret === undefined ? {} : { secret: form.client_secret }) };
  }
  if (form.client_secret !== undefined) return { clientId: form.client_id ?? '', secret: form.client_secret, method: 'client_secret_post' };
  return { clientId: form.client_id ?? '', method: 'none' };
}

function appFor(env: TestEnv) {
  const loaded = loadConfig(env);
  if (!loaded.ok) throw loaded.error;
  const app = new Hono<AppEnv>()
    .use(configure(loaded.config))
    .post('/auth/oauth/token', async (c) => {
      const form = Object.fromEntries(new URLSearchParams(new TextDecoder().decode(await c.req.arrayBuffer())));
      const client = await authenticateClient(c, credentialsFrom(c.req.header('authorization'), form));
      return c.json({ client_id: client.id });
    })
    .get('/find', async (c) => {
      const client = await findClient(c, c.req.query('id') ?? '');
      return c.json({ client });
    });
  app.onError(errorHandler);
  return app;
}

const apps = new WeakMap<object, ReturnType<typeof appFor>>();

async function request(env: TestEnv, path: string, init: RequestInit): Promise<Response> {
  let app = apps.get(env);
  if (!app) apps.set(env, (app = appFor(env)));
  const ctx = createExecutionContext();
  const response = await app.request(new URL(path, PUBLIC_URL).href, init, env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** POSTs `form` (and an optional `Authorization`) to the probe at the token endpoint's path. */
export function authenticateAt(form: Record<string, string>, opts: { authorization?: string; env?: TestEnv } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (opts.authorization) headers.authorization = opts.authorization;
  return request(opts.env ?? defaultEnv, '/auth/oauth/token', { method: 'POST', headers, body: new URLSearchParams(form).toString() });
}

/** HTTP Basic credentials as RFC 6749 §2.3.1 sends them. */
export const basic = (id: string, secret: string) => `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`;

/** What `findClient` returns for `id` (null: none). */
export async function findClientAt(id: string, env?: TestEnv): Promise<Record<string, unknown> | null> {
  const r = await request(env ?? defaultEnv, `/find?id=${encodeURIComponent(id)}`, {});
  return (await r.json<{ client: Record<string, unknown> | null }>()).client;
}
