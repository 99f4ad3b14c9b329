/**
 * `{AUTH_PREFIX}/scim/v2`: the SCIM 2.0 service provider (RFC 7644) a directory (Okta, Entra)
 * provisions users and groups through (README "SCIM provisioning"). Mounted only when SCIM is on
 * (app-lazy.ts: SCIM_TOKEN is set or an administrator created a token; otherwise the path is
 * 404); every request needs one of those as its bearer token (auth/scim-tokens.ts). Every
 * answer, errors included, is `application/scim+json`; errors are in the SCIM error schema.
 * Rate-limited per IP (`scim`; without SCIM_TOKEN counted in app-lazy.ts, before D1 says whether SCIM is on).
 * The body limit is the gateway's (64 KiB), answered here as a SCIM 413.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppEnv } from '../env';
import { bodyText } from '../http/body';
import { toApiError } from '../http/errors';
import { log } from '../observability/log';
import { checkRateLimit, rateLimitError } from '../middleware/rate-limit';
import { readListQuery, ScimProblem, SCIM_CONTENT_TYPE } from '../auth/scim-protocol';
import { authenticateDirectory } from '../auth/scim-tokens';
import { createScimUser, deleteScimUser, getScimUser, listScimUserResources, patchScimUser, replaceScimUser } from '../auth/scim-users';
import { createScimGroup, deleteScimGroupResource, getScimGroup, listScimGroupResources, patchScimGroup, replaceScimGroupResource } from '../auth/scim-groups';
import { discoveryRoutes } from './scim-discovery';
import { recordEvent } from '../auth/events';

/** The SCIM base URL (what a directory is configured with). */
const scimBase = (c: Context<AppEnv>) => `${c.get('config').PUBLIC_URL}${c.get('config').AUTH_PREFIX}/scim/v2`;

/** A resource or list; a created resource (201) also names its URL in `Location` (RFC 7644 §3.3). */
function scimJson(body: object & { meta?: { location: string } }, status: 200 | 201 = 200): Response {
  const headers: Record<string, string> = { 'content-type': SCIM_CONTENT_TYPE, 'cache-control': 'no-store' };
  if (status === 201 && body.meta) headers.location = body.meta.location;
  return new Response(JSON.stringify(body), { status, headers });
}

/** The request's JSON body; SCIM clients send `application/scim+json` or `application/json`. */
async function scimBody(c: Context<AppEnv>): Promise<unknown> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== SCIM_CONTENT_TYPE && type !== 'application/json') throw new ScimProblem(415, `Send ${SCIM_CONTENT_TYPE} or application/json.`);
  const text = await bodyText(c);
  try {
    return JSON.parse(text);
  } catch {
    throw new ScimProblem(400, 'The request body is not valid JSON.', 'invalidSyntax');
  }
}

/** Any error as a SCIM error: the gateway's own (body limit, rate limit, storage) keep their status. */
function toProblem(err: unknown): ScimProblem {
  if (err instanceof ScimProblem) return err;
  const api = toApiError(err);
  const status = api.status === 413 || api.status === 429 || api.status === 503 || api.status === 415 || api.status === 404 || api.status === 400 ? api.status : 500;
  if (status === 500) log.error('scim_error', { message: err instanceof Error ? err.message : String(err) });
  const headers: Record<string, string> = api.extra.retryAfter !== undefined ? { 'retry-after': String(api.extra.retryAfter) } : {};
  return new ScimProblem(status, status === 500 ? 'The request could not be completed.' : api.description, undefined, headers);
}

function renderProblem(err: unknown): Response {
  const problem = toProblem(err);
  return new Response(JSON.stringify(problem.body()), {
    status: problem.status,
    headers: { 'content-type': SCIM_CONTENT_TYPE, 'cache-control': 'no-store', ...problem.headers, ...(problem.status === 401 ? { 'www-authenticate': 'Bearer realm="scim"' } : {}) },
  });
}

/** The gateway's body limit (app.ts MAX_BODY_BYTES), which app.ts leaves to this app for its own 413. */
const MAX_BODY_BYTES = 64 * 1024;

export const scimRoutes = new Hono<AppEnv>()
  .use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ScimProblem(413, 'The request body is too large (64 KiB at most).');
      },
    }),
  )
  .use('*', async (c, next) => {
    // Without SCIM_TOKEN, app-lazy.ts has counted the request already (before asking D1 whether SCIM is on).
    const counted = c.get('scimRateLimit');
    if (counted === 'over') throw rateLimitError(c.get('config').RATE_LIMIT_PERIOD);
    if (counted === undefined) await checkRateLimit(c, 'scim');
    await next();
  })
  .use('*', async (c, next) => {
    // Any valid credential acts as the one directory: which one is not passed on.
    if (!(await authenticateDirectory(c, c.req.header('authorization')))) {
      await recordEvent(c, { event: 'scim_denied', outcome: 'failure', userId: null, detail: { path: c.req.path.slice(0, 200) } });
      throw new ScimProblem(401, 'The bearer token is missing, or is not SCIM_TOKEN or an enabled SCIM token of this gateway.');
    }
    await next();
  })
  .route('/', discoveryRoutes)
  .post('/Users', async (c) => scimJson(await createScimUser(c, await scimBody(c), scimBase(c)), 201))
  .get('/Users', async (c) => scimJson(await listScimUserResources(c, readListQuery(c.req.query()), scimBase(c))))
  .get('/Users/:id', async (c) => scimJson(await getScimUser(c, c.req.param('id'), scimBase(c))))
  .put('/Users/:id', async (c) => scimJson(await replaceScimUser(c, c.req.param('id'), await scimBody(c), scimBase(c))))
  .patch('/Users/:id', async (c) => scimJson(await patchScimUser(c, c.req.param('id'), await scimBody(c), scimBase(c))))
  .delete('/Users/:id', async (c) => {
    await deleteScimUser(c, c.req.param('id'));
    return c.body(null, 204);
  })
  .post('/Groups', async (c) => scimJson(await createScimGroup(c, await scimBody(c), scimBase(c)), 201))
  .get('/Groups', async (c) => scimJson(await listScimGroupResources(c, readListQuery(c.req.query()), scimBase(c))))
  .get('/Groups/:id', async (c) => scimJson(await getScimGroup(c, c.req.param('id'), scimBase(c))))
  .put('/Groups/:id', async (c) => scimJson(await replaceScimGroupResource(c, c.req.param('id'), await scimBody(c), scimBase(c))))
  .patch('/Groups/:id', async (c) => scimJson(await patchScimGroup(c, c.req.param('id'), await scimBody(c), scimBase(c))))
  .delete('/Groups/:id', async (c) => {
    await deleteScimGroupResource(c, c.req.param('id'));
    return c.body(null, 204);
  })
  .all('*', () => {
    throw new ScimProblem(404, 'No such SCIM endpoint.');
  })
  .onError((err) => renderProblem(err));
