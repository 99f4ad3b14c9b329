/**
 * The signed-in user's session: status (`/me`), refresh, the session list, and sign-out.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { recordEvent } from '../auth/events';
import { endAllSessions, endSession, refreshBrowserSession, refreshSession, signOut } from '../auth/sessions';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { clearSessionCookies, readRefreshCookie } from '../http/cookies';
import { ApiError, invalidToken } from '../http/errors';
import { presentedToken, sessionsOf } from '../auth/authenticate';
import { userFromReplica } from '../auth/directory-reads';
import { requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { findSession, listActiveSessions } from '../storage/sessions';
import { nowSeconds as now } from '../util/time';
import { publicSession, publicUser, signedInResponse } from './sign-in-reply';

const refreshSchema = v.strictObject({ refresh_token: v.optional(v.pipe(v.string('must be a string'), v.maxLength(512, 'is too long'))) }, 'is not a known field');
const emptySchema = v.strictObject({ return_to: v.optional(v.string()) }, 'is not a known field');

/** Bodies are optional on these endpoints; when one is sent it must still be well-formed. */
async function optionalBody<S extends v.GenericSchema>(c: Context<AppEnv>, schema: S): Promise<v.InferOutput<S> | undefined> {
  const length = c.req.header('content-length');
  if (!c.req.header('content-type') && (length === undefined || length === '0')) return undefined;
  return (await readBody(c, schema)).data;
}

export const sessionRoutes = new Hono<AppEnv>()
  .get('/me', requireAuth(), async (c) => {
    const auth = c.get('user');
    const [user, session] = await Promise.all([userFromReplica(c, auth.id), findSession(sessionsOf(c, auth.id), auth.sessionId)]);
    if (!user || user.disabledAt !== null || !session || session.revokedAt !== null || session.expiresAt <= now()) {
      throw invalidToken('The session has ended.');
    }
    c.header('cache-control', 'no-store');
    // Groups as this access token carries them: what routes decide on until it is refreshed.
    return c.json({ user: { ...publicUser(c, user), groups: auth.groups }, session: { ...publicSession(session, auth.sessionId), access_token_expires_at: auth.tokenExpiresAt } });
  })
  .post('/refresh', sameOrigin(), async (c) => {
    const body = await optionalBody(c, refreshSchema);
    const fromBody = body?.refresh_token;
    const fromCookie = readRefreshCookie(c);
    const token = fromBody ?? fromCookie;
    if (!token) throw invalidToken('No refresh token was sent.');
    try {
      // A browser's cookie only with its access cookie (auth/sessions.ts refreshBrowserSession).
      const { user, tokens } = fromBody !== undefined ? await refreshSession(c, fromBody) : await refreshBrowserSession(c, token);
      return signedInResponse(c, user, tokens, fromBody !== undefined ? 'token' : 'cookie');
    } catch (e) {
      if (fromBody === undefined && e instanceof ApiError && e.code === 'invalid_token') clearSessionCookies(c);
      throw e;
    }
  })
  .post('/logout', sameOrigin(), async (c) => {
    // Idempotent (auth/sessions.ts signOut): a revoked or expired token, or no session at all,
    // still answers 200 with the cookies cleared; `ended_sessions` says whether one ended now.
    const body = await optionalBody(c, refreshSchema);
    const presented = presentedToken(c);
    clearSessionCookies(c);
    c.header('cache-control', 'no-store');
    const result = await signOut(c, presented, body?.refresh_token ?? readRefreshCookie(c));
    if (result.sessionId !== null) {
      await recordEvent(c, { event: 'logout', outcome: 'success', userId: result.userId, detail: { sid: result.sessionId, ended: result.ended } });
    }
    return c.json({ ok: true, ended_sessions: result.ended });
  })
  .post('/logout-all', sameOrigin(), requireAuth(), async (c) => {
    await optionalBody(c, emptySchema);
    const auth = c.get('user');
    clearSessionCookies(c);
    // The caller's own session is revoked in KV last: if a KV write fails (503), its token
    // still works for the retry, which also re-revokes the sessions D1 already shows as ended.
    const ended = await endAllSessions(c, auth.id, auth.sessionId);
    await recordEvent(c, { event: 'logout_all', outcome: 'success', userId: auth.id, detail: { sessions: ended.length } });
    c.header('cache-control', 'no-store');
    return c.json({ ok: true, ended_sessions: ended.length });
  })
  .get('/sessions', requireAuth(), async (c) => {
    const auth = c.get('user');
    const sessions = await listActiveSessions(sessionsOf(c, auth.id), now());
    c.header('cache-control', 'no-store');
    return c.json({ sessions: sessions.map((s) => publicSession(s, auth.sessionId)) });
  })
  .delete('/sessions/:id', sameOrigin(), requireAuth(), async (c) => {
    const auth = c.get('user');
    const id = c.req.param('id');
    // Another user's session id answers exactly like a missing one. A session that ended
    // moments ago is ended again (KV), so the retry of a call whose KV write failed completes.
    if (id.length > 64 || !(await endSession(c, id, auth.id))) throw new ApiError('not_found', 'No such session.');
    if (id === auth.sessionId) clearSessionCookies(c);
    await recordEvent(c, { event: 'session_revoked', outcome: 'success', userId: auth.id, detail: { sid: id } });
    return c.json({ ok: true });
  });
