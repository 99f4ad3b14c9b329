/**
 * RFC 9728 protected resource metadata for the routes marked `resource = "mcp"` (README "MCP
 * servers"), at `/.well-known/oauth-protected-resource<path>` on the route's host (§3.1: the
 * well-known name goes between the host and the resource's path; a resource at `/` has the bare
 * name). It names the gateway as the resource's authorization server, so an MCP client that
 * got a 401 finds where to register and authorize.
 *
 * Only the paths of a resource are the gateway's: every other path under the well-known name
 * falls through to the proxy, as any `/.well-known/` path does. The documents are built once
 * per configuration; a request pays a map lookup, and only for paths under the well-known name.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import type { Config } from '../config/schema';
import { METADATA_PATH, protectedResources } from '../config/protected-resources';
import { ApiError, errorResponse } from '../http/errors';
import { requestHost } from '../proxy/route-table';

/** Static for a deployment: a change of ROUTES is a new deployment, seen within minutes. */
const CACHE_CONTROL = 'public, max-age=300';

/** Where each document is served: `<host or ''>\n<path>` (the path exactly as the resource URL has it). */
function documents(config: Config): Map<string, string> {
  const out = new Map<string, string>();
  for (const { url, route } of protectedResources(config.ROUTES, config.PUBLIC_URL)) {
    const { host, pathname } = new URL(url);
    const document = {
      resource: url,
      authorization_servers: [config.PUBLIC_URL],
      bearer_methods_supported: ['header'],
      resource_name: `${config.APP_NAME}: ${host}${route.path === '/' ? '' : route.path}`,
    };
    out.set(`${route.host ?? ''}\n${pathname === '/' ? '' : pathname}`, JSON.stringify(document));
  }
  return out;
}

/**
 * The middleware serving the documents, mounted on the well-known name and below it (app.ts
 * mounts it only when some route is a protected resource).
 */
export function resourceMetadata(config: Config, gatewayHeaders: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  const served = documents(config);
  return async (c, next) => {
    const url = new URL(c.req.url);
    const host = requestHost(config, url.host);
    const document = host === 'unknown' ? undefined : served.get(`${host ?? ''}\n${url.pathname.slice(METADATA_PATH.length)}`);
    if (document === undefined) return next();
    const method = c.req.method;
    let response: Response;
    if (method === 'GET' || method === 'HEAD') {
      response = new Response(method === 'HEAD' ? null : document, {
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': CACHE_CONTROL, 'access-control-allow-origin': '*' },
      });
    } else if (method === 'OPTIONS') {
      // A browser-based MCP client's preflight (the SDK sends MCP-Protocol-Version with its discovery).
      response = new Response(null, {
        status: 204,
        headers: { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'access-control-allow-headers': '*', 'access-control-max-age': '86400' },
      });
    } else {
      response = errorResponse(new ApiError('method_not_allowed', `${method} is not allowed on resource metadata.`, { headers: { allow: 'GET, HEAD, OPTIONS' } }));
    }
    await gatewayHeaders(c, async () => {
      c.res = response;
    });
    return c.res;
  };
}
