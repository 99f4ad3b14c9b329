/**
 * Reads a JSON or form body into a schema-checked object. Size is capped by hono's
 * `bodyLimit` (see app.ts); everything else that is wrong becomes a clear 400/415.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import { ApiError, badRequest } from './errors';

export type BodyKind = 'json' | 'form';

export function bodyKind(c: Context): BodyKind {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') return 'form';
  throw new ApiError('unsupported_media_type', 'Send application/json or application/x-www-form-urlencoded.');
}

/** The body as text; a body that cannot be read (a broken stream) is `invalid_request`, a limit's own error passes. */
export async function bodyText(c: Context): Promise<string> {
  try {
    return await c.req.text();
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw badRequest('The request body could not be read.');
  }
}

async function readRaw(c: Context, kind: BodyKind): Promise<unknown> {
  if (kind === 'json') {
    const text = await bodyText(c);
    try {
      return JSON.parse(text);
    } catch {
      throw badRequest('The request body is not valid JSON.');
    }
  }
  let form: Record<string, string | File | (string | File)[]>;
  try {
    form = await c.req.parseBody({ all: true });
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw badRequest('The form body could not be read.');
  }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(form)) {
    if (Array.isArray(val) || typeof val !== 'string') throw badRequest(`Field "${k}" must be given once, as text.`);
    out[k] = val;
  }
  return out;
}

/** Fields that a client must never set about itself. Named in the error, since they are a tell. */
const PRIVILEGED = ['roles', 'role', 'email_verified', 'emailVerified', 'admin', 'is_admin', 'disabled_at', 'id', 'user_id'];

export async function readBody<S extends v.GenericSchema>(c: Context, schema: S): Promise<{ kind: BodyKind; data: v.InferOutput<S> }> {
  const kind = bodyKind(c);
  const raw = await readRaw(c, kind);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest('The request body must be an object.');
  for (const key of PRIVILEGED) {
    if (key in raw) throw badRequest(`Field "${key}" cannot be set by a client.`);
  }
  const parsed = v.safeParse(schema, raw);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const field = issue.path?.map((p) => String(p.key)).join('.');
    // valibot reports a missing required key with the object schema's own message (ours says
    // "is not a known field", meant for unknown keys); it is the one issue that received nothing.
    const message = issue.received === 'undefined' ? 'is required' : issue.message;
    throw badRequest(field ? `Field "${field}": ${message}` : message);
  }
  return { kind, data: parsed.output };
}

/** The query string, validated by `schema`; a 400 naming the first bad parameter otherwise. */
export function readQuery<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  const parsed = v.safeParse(schema, c.req.query());
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw badRequest(`Query "${issue.path?.map((p) => String(p.key)).join('.') ?? ''}": ${issue.message}`);
  }
  return parsed.output;
}
