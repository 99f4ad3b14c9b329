/** Calls to the SCIM service provider, and its fixtures with their placeholders filled in. */
import { call, makeEnv, type TestEnv } from '../support/helpers';

export const SCIM_TOKEN = 'scim-test-token-0123456789abcdefghijklmnop';
export const scimEnv = (overrides: Record<string, unknown> = {}): TestEnv => makeEnv({ SCIM_TOKEN, ...overrides });
export const defaultScimEnv = scimEnv();

export interface FixtureRequest {
  method: string;
  path: string;
  body?: unknown;
}

/** A fixture request with `{{name}}` replaced throughout. */
export function fill(request: FixtureRequest, values: Record<string, string>): FixtureRequest {
  const text = JSON.stringify(request).replace(/\{\{(\w+)\}\}/g, (_, name: string) => values[name] ?? `{{${name}}}`);
  return JSON.parse(text) as FixtureRequest;
}

export async function scim(
  method: string,
  path: string,
  body?: unknown,
  opts: { env?: TestEnv; token?: string | null; contentType?: string; raw?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? SCIM_TOKEN}`;
  const sent = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  if (sent !== undefined) headers['content-type'] = opts.contentType ?? 'application/scim+json';
  return call(`/auth/scim/v2${path}`, { method, headers, body: sent, env: opts.env ?? defaultScimEnv });
}

export const send = (r: FixtureRequest, env?: TestEnv) => scim(r.method, r.path, r.body, { env });
