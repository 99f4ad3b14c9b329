/**
 * `/auth/admin/*`: user administration as JSON, for users whose role `admin` is current in D1
 * (a token's roles may be up to ACCESS_TOKEN_TTL old, so they are not trusted here). Everyone
 * else signed in gets 403 `forbidden`; no token at all gets 401. Unsafe methods are
 * CSRF-checked with `sameOrigin()`, and every call is audited with the acting admin's id.
 *
 * - `GET  /admin/users?q=&limit=&offset=`    list and search (email or name contains `q`)
 * - `GET  /admin/users/:id`                  the user, their sessions and recent events
 * - `POST /admin/users/:id/disable`          disable, ending every session at once (D1 + KV)
 * - `POST /admin/users/:id/enable`           enable again (ended sessions stay ended)
 * - `POST /admin/users/:id/logout-all`       end every session of the user (the account stays enabled)
 * - `PUT  /admin/users/:id/roles/:role`      grant a role (idempotent)
 * - `DELETE /admin/users/:id/roles/:role`    revoke a role
 * - `POST /admin/users/:id/verify-email`     mark the user's current address verified
 * - `POST /admin/users/:id/password-reset`   mail the user a password reset link (needs mail)
 * - `DELETE /admin/users/:id/second-factors` remove the authenticator app and recovery codes (a lost phone)
 * - `GET  /admin/explain?user=&url=&method=` which route and policy rule decide a request (routes/policy-explain.ts)
 * - `/admin/clients...`                      OAuth clients: register, change, rotate, disable (routes/admin-clients.ts)
 * - `/admin/scim-tokens...`                  the directory's SCIM tokens: create, rotate, disable, delete (routes/admin-scim-tokens.ts)
 *
 * Role changes reach tokens at the next refresh; disabling is immediate.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import * as v from 'valibot';
import { liveSessionUser } from '../auth/authenticate';
import { userFromReplica } from '../auth/directory-reads';
import { recordEvent } from '../auth/events';
import { effectiveRoles } from '../auth/roles';
import { mfaRequiredByRole } from '../auth/second-factor-status';
import { ADMIN_ROLE, disableUser, enableUser, grantRole, mailPasswordReset, resetSecondFactors, revokeRole, searchUsers, signOutEverywhere, viewUser } from '../auth/user-administration';
import type { AppEnv } from '../env';
import { readQuery } from '../http/body';
import { ApiError, insufficientUserAuthentication } from '../http/errors';
import { requireAuth } from '../middleware/require-auth';
import { sameOrigin } from '../middleware/same-origin';
import { markEmailVerified } from '../storage/email-verification';
import { findUserById, type User } from '../storage/users';
import { adminClientRoutes } from './admin-clients';
import { adminScimTokenRoutes } from './admin-scim-tokens';
import { policyExplainRoute } from './policy-explain';
import { nowSeconds as now } from '../util/time';

const MAX_ID_LENGTH = 64;

/**
 * Admits only users whose current D1 record (not the token) grants `admin`, who are not
 * disabled, and whose session is live in its object: the current record may grant more than the token
 * did (a claim verifies an address in ADMIN_EMAILS and ends the squatter's sessions, whose
 * tokens may still pass where the revocation has not arrived).
 */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const me = await liveSessionUser(c, c.get('user'));
    if (!effectiveRoles(me, c.get('config')).includes(ADMIN_ROLE)) {
      await recordEvent(c, { event: 'admin_denied', outcome: 'failure', userId: c.get('user').id, detail: { path: c.req.path.slice(0, 200) } });
      throw new ApiError('forbidden', 'This requires the "admin" role.');
    }
    // MFA_REQUIRED_ROLES: an admin whose role requires a second factor must have signed in with one.
    if (mfaRequiredByRole(me, c.get('config')) && !c.get('user').amr.includes('mfa')) {
      await recordEvent(c, { event: 'admin_denied', outcome: 'failure', userId: me.id, detail: { path: c.req.path.slice(0, 200), reason: 'no_mfa' } });
      const config = c.get('config');
      throw insufficientUserAuthentication({ missing: ['mfa'] }, `${config.PUBLIC_URL}${config.AUTH_PREFIX}/step-up`);
    }
    await next();
  };
}

function adminView(c: Context<AppEnv>, user: User) {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    roles: user.roles,
    effective_roles: effectiveRoles(user, c.get('config')),
    disabled: user.disabledAt !== null,
    disabled_at: user.disabledAt,
    has_password: user.passwordHash !== null,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
  };
}

/**
 * The user the path names. A change reads it on the primary (what it decides on must be
 * current); a view may read a replica (a miss is confirmed on the primary).
 */
export async function targetUser(c: Context<AppEnv>, forView = false): Promise<User> {
  const id = c.req.param('id') ?? '';
  if (id.length > MAX_ID_LENGTH) throw new ApiError('not_found', 'No such user.');
  const user = forView ? await userFromReplica(c, id) : await findUserById(c.env.DB, id);
  if (!user) throw new ApiError('not_found', 'No such user.');
  return user;
}

const listQuery = v.object({
  q: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(254, 'is too long'))),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, 'must be a whole number'), v.transform(Number), v.minValue(1), v.maxValue(100, 'must be at most 100')), '50'),
  offset: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, 'must be a whole number'), v.transform(Number)), '0'),
});

export const adminRoutes = new Hono<AppEnv>()
  .use('*', sameOrigin(), requireAuth(), requireAdmin())
  .use('*', async (c, next) => {
    c.header('cache-control', 'no-store');
    await next();
  })
  .route('/', policyExplainRoute)
  .route('/', adminClientRoutes)
  .route('/', adminScimTokenRoutes)
  .get('/users', async (c) => {
    const q = readQuery(c, listQuery);
    const limit = Number(q.limit);
    const offset = Number(q.offset);
    const users = await searchUsers(c, { search: q.q || undefined, limit, offset }, c.get('user').id);
    return c.json({ users: users.map((u) => adminView(c, u)), limit, offset });
  })
  .get('/users/:id', async (c) => {
    const user = await targetUser(c, true);
    const { sessions, events, identities } = await viewUser(c, user, c.get('user').id);
    return c.json({
      user: adminView(c, user),
      identities: identities.map((i) => ({ provider: i.provider, email: i.email, created_at: i.createdAt, last_used_at: i.lastUsedAt })),
      sessions: sessions.map((s) => ({
        id: s.id,
        created_at: s.createdAt,
        last_used_at: s.lastUsedAt,
        expires_at: s.expiresAt,
        user_agent: s.userAgent,
        ip: s.ip,
        country: s.country,
        provider: s.provider,
      })),
      events: events.map((e) => ({ at: e.at, event: e.event, outcome: e.outcome, ip: e.ip, user_agent: e.userAgent, detail: e.detail })),
    });
  })
  .post('/users/:id/disable', async (c) => {
    const user = await targetUser(c);
    const { disabledAt, endedSessions } = await disableUser(c, user, c.get('user').id);
    return c.json({ ok: true, user: adminView(c, { ...user, disabledAt }), ended_sessions: endedSessions });
  })
  .post('/users/:id/enable', async (c) => {
    const user = await targetUser(c);
    await enableUser(c, user, c.get('user').id);
    return c.json({ ok: true, user: adminView(c, { ...user, disabledAt: null }) });
  })
  .post('/users/:id/logout-all', async (c) => {
    const user = await targetUser(c);
    const ended = await signOutEverywhere(c, user, c.get('user').id);
    return c.json({ ok: true, ended_sessions: ended });
  })
  .put('/users/:id/roles/:role', async (c) => {
    const user = await targetUser(c);
    const roles = await grantRole(c, user, c.req.param('role'), c.get('user').id);
    return c.json({ ok: true, user: adminView(c, { ...user, roles }) });
  })
  .delete('/users/:id/roles/:role', async (c) => {
    const user = await targetUser(c);
    const roles = await revokeRole(c, user, c.req.param('role'), c.get('user').id);
    return c.json({ ok: true, user: adminView(c, { ...user, roles }) });
  })
  .post('/users/:id/verify-email', async (c) => {
    const user = await targetUser(c);
    const changed = !user.emailVerified && (await markEmailVerified(c.env.DB, user.id, user.email, now()));
    await recordEvent(c, { event: 'admin_email_verified', outcome: 'success', userId: user.id, detail: { admin: c.get('user').id, email: user.email, changed } });
    // Roles from ADMIN_EMAILS and route allow lists apply from the user's next token (refresh).
    return c.json({ ok: true, user: adminView(c, (await findUserById(c.env.DB, user.id)) ?? user) });
  })
  .post('/users/:id/password-reset', async (c) => {
    const user = await targetUser(c);
    await mailPasswordReset(c, user, c.get('user').id);
    return c.json({ ok: true, sent_to: user.email });
  })
  .delete('/users/:id/second-factors', async (c) => {
    const user = await targetUser(c);
    const removed = await resetSecondFactors(c, user, c.get('user').id);
    return c.json({ ok: true, removed: { totp: removed.totp, passkeys: removed.passkeys, recovery_codes: removed.recoveryCodes } });
  });
