/**
 * What an administrator does to a user: one home for each action, called by the JSON admin API
 * (routes/admin.ts) and by the console's Users area (routes/console-users.ts) alike. Each
 * action changes D1 (and ends sessions where it says so), then records its audit event naming
 * the acting admin (`detail.admin`), so both ways in leave the same trail.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, badRequest } from '../http/errors';
import { mailEnabled } from '../mail/send';
import { listUserEvents, type StoredEvent } from '../storage/events';
import { listUserIdentities, type Identity } from '../storage/identities';
import { listActiveSessions, sessionIdsWithLiveTokens, type Session } from '../storage/sessions';
import { listUsers, setDisabled, setRoles, type User } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { directoryReads } from './directory-reads';
import { recordEvent } from './events';
import { endAllSessions, endSessions, tokenLifetime } from './sessions';

export const ADMIN_ROLE = 'admin';
const ROLE_NAME = /^[a-z0-9][a-z0-9_.:-]{0,63}$/i;

/** Throws 400 unless `role` is a role name: 1-64 letters, digits, or _ . : - */
export function checkRoleName(role: string): void {
  if (!ROLE_NAME.test(role)) throw badRequest('The role name must be 1-64 letters, digits, or _ . : -');
}

/** Users whose email or name contains `search` (all without), newest first; audited as a listing. */
export async function searchUsers(c: Context<AppEnv>, query: { search?: string; limit: number; offset: number }, admin: string): Promise<User[]> {
  const users = await listUsers(directoryReads(c), query);
  await recordEvent(c, { event: 'admin_users_listed', outcome: 'success', userId: admin, detail: { q: query.search ?? null } });
  return users;
}

/** What an admin sees of `user` besides the record: live sessions, linked identities, the latest events. Audited as a view. */
export async function viewUser(c: Context<AppEnv>, user: User, admin: string): Promise<{ sessions: Session[]; events: StoredEvent[]; identities: Identity[] }> {
  const [sessions, events, identities] = await Promise.all([
    listActiveSessions(sessionsOf(c, user.id), now()),
    listUserEvents(directoryReads(c), user.id, 50),
    listUserIdentities(directoryReads(c), user.id),
  ]);
  await recordEvent(c, { event: 'admin_user_viewed', outcome: 'success', userId: user.id, detail: { admin } });
  return { sessions, events, identities };
}

/**
 * Disables `user`, ending every session at once (object, then KV). The sessions end first: a
 * failure there is a 503 with nothing disabled yet, and the retry finishes. Again once disabled:
 * a sign-in that read the account before it was disabled and stored its session in between is
 * ended too (the sign-in's own check after storing catches one later). An admin cannot disable
 * their own account (409).
 */
export async function disableUser(c: Context<AppEnv>, user: User, admin: string): Promise<{ disabledAt: number; endedSessions: number }> {
  if (user.id === admin) throw new ApiError('conflict', 'You cannot disable your own account.');
  const ended = await endAllSessions(c, user.id);
  const t = now();
  if (user.disabledAt === null) await setDisabled(c.env.DB, user.id, t, t);
  ended.push(...(await endAllSessions(c, user.id)));
  await recordEvent(c, { event: 'admin_user_disabled', outcome: 'success', userId: user.id, detail: { admin, ended_sessions: ended.length } });
  return { disabledAt: user.disabledAt ?? t, endedSessions: ended.length };
}

/** Enables `user` again (sessions that ended stay ended). */
export async function enableUser(c: Context<AppEnv>, user: User, admin: string): Promise<void> {
  if (user.disabledAt !== null) await setDisabled(c.env.DB, user.id, null, now());
  await recordEvent(c, { event: 'admin_user_enabled', outcome: 'success', userId: user.id, detail: { admin } });
}

/**
 * Ends every session of `user` (the account stays enabled: they may sign in again). The access
 * tokens die with their sessions (KV and the fence, as for any ending).
 */
export async function signOutEverywhere(c: Context<AppEnv>, user: User, admin: string): Promise<number> {
  const ended = await endAllSessions(c, user.id);
  await recordEvent(c, { event: 'admin_sessions_ended', outcome: 'success', userId: user.id, detail: { admin, ended_sessions: ended.length } });
  return ended.length;
}

/**
 * Ends those of `sessionIds` that are sessions of `user` whose tokens may still verify (an id of
 * another user's session, or of one long ended, is left out: nothing else is revoked), read from
 * the user's object without the listing's bound of 100, so a session behind a hundred busier
 * ones still ends. One ended so recently that its tokens may verify is revoked in KV again: the
 * retry after a failed KV write finishes the job. The fence, KV, the apps' back-channel logout
 * and the origins' notices follow as for every ending (auth/sessions.ts). Audited as
 * `admin_sessions_ended` with the ids revoked. Returns how many this call ended.
 */
export async function endUserSessions(c: Context<AppEnv>, user: Pick<User, 'id'>, sessionIds: readonly string[], admin: string): Promise<number> {
  const mayVerify = new Set(await sessionIdsWithLiveTokens(sessionsOf(c, user.id), now(), tokenLifetime(c)));
  const ids = [...new Set(sessionIds)].filter((id) => mayVerify.has(id));
  const ended = ids.length > 0 ? await endSessions(c, user.id, ids) : 0;
  await recordEvent(c, { event: 'admin_sessions_ended', outcome: 'success', userId: user.id, detail: { admin, ended_sessions: ended, session_ids: ids } });
  return ended;
}

/** Grants `role` (idempotent); returns the user's stored roles after. Tokens carry it from their next refresh. */
export async function grantRole(c: Context<AppEnv>, user: User, role: string, admin: string): Promise<string[]> {
  checkRoleName(role);
  const roles = [...new Set([...user.roles, role])].sort();
  await setRoles(c.env.DB, user.id, roles, now());
  await recordEvent(c, { event: 'admin_role_granted', outcome: 'success', userId: user.id, detail: { admin, role } });
  return roles;
}

/**
 * Revokes a stored `role`; returns the roles after. 404 when the user does not hold it; an admin
 * cannot revoke their own `admin` role (409).
 */
export async function revokeRole(c: Context<AppEnv>, user: User, role: string, admin: string): Promise<string[]> {
  checkRoleName(role);
  if (user.id === admin && role === ADMIN_ROLE) throw new ApiError('conflict', 'You cannot revoke your own admin role.');
  if (!user.roles.includes(role)) throw new ApiError('not_found', 'The user does not have this role.');
  const roles = user.roles.filter((r) => r !== role);
  await setRoles(c.env.DB, user.id, roles, now());
  await recordEvent(c, { event: 'admin_role_revoked', outcome: 'success', userId: user.id, detail: { admin, role } });
  return roles;
}

/**
 * Mails `user` a password reset link. Synchronous, no cool-down: the admin sees a mail outage as
 * 503 `mail_unavailable`, and nothing is left behind. 409 without a mail transport, or for a
 * user without a password.
 */
export async function mailPasswordReset(c: Context<AppEnv>, user: User, admin: string): Promise<void> {
  if (!mailEnabled(c.get('config'))) throw new ApiError('conflict', 'This gateway has no mail transport (SMTP_URL or an EMAIL binding): it cannot send reset links.');
  if (user.passwordHash === null) throw new ApiError('conflict', 'This user has no password (they sign in with a provider): there is nothing to reset.');
  const { sendResetLink } = await import('./password-reset');
  await sendResetLink(c, user, false);
  await recordEvent(c, { event: 'admin_password_reset_sent', outcome: 'success', userId: user.id, detail: { admin } });
}

/**
 * Removes the user's authenticator app, passkeys and recovery codes (a lost phone); audited
 * inside (`admin_second_factors_reset`, naming the admin) and a notice mailed to the user; the
 * user's sessions stay.
 */
export async function resetSecondFactors(c: Context<AppEnv>, user: User, admin: string): Promise<{ totp: boolean; recoveryCodes: number; passkeys: number }> {
  const { removeSecondFactors } = await import('./second-factor');
  return removeSecondFactors(c, user, { admin });
}
