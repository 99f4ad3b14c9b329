/**
 * Schema of the `ROUTES` setting: which paths are proxied where, and who may pass.
 */
import * as v from 'valibot';

const pathPrefix = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^\/[^?#\\]*$/, 'path must start with / and hold no query, fragment or backslash'),
  v.check((p) => !/(^|\/)\.\.?(\/|$)/.test(p) && !p.includes('%'), 'path must be a plain normalised prefix'),
  v.transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p)),
);

const origin = v.pipe(
  v.string(),
  v.trim(),
  v.check((o) => {
    if (/^service:[A-Z_][A-Z0-9_]*$/i.test(o)) return true;
    try {
      const u = new URL(o);
      return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password;
    } catch {
      return false;
    }
  }, 'origin must be an http(s) URL or service:BINDING'),
);

const list = v.optional(v.array(v.pipe(v.string(), v.trim(), v.toLowerCase())));

export const routeSchema = v.strictObject({
  path: pathPrefix,
  origin,
  auth: v.picklist(['required', 'optional', 'public'], 'auth must be required, optional or public'),
  allow: v.optional(
    v.strictObject({
      emails: list,
      domains: list,
      roles: v.optional(v.array(v.pipe(v.string(), v.trim()))),
    }),
  ),
  audience: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1))),
  strip_prefix: v.optional(v.boolean(), false),
});

export const routesSchema = v.array(routeSchema, 'ROUTES must be a list of routes');

export type RouteConfig = v.InferOutput<typeof routeSchema>;
