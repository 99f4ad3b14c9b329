/**
 * Live sessions across users, for administrators (the console's Sessions area). Sessions live
 * in each user's own Durable Object; D1 knows who may hold one: every session starts with a
 * successful `login` event (auth/sign-in.ts), and none outlives SESSION_MAX_AGE after it. So a
 * page is the users with such an event in the window (storage/audit-log.ts `usersSignedInSince`,
 * most recent first, {@link USERS_PER_PAGE} a page), and each of those users' live sessions
 * read from their object, filtered. Events age out after AUDIT_RETENTION_DAYS, and a failed
 * audit write leaves a session without one: those are found by naming the user, whose object is
 * read without any event.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { usersSignedInSince, type RecentSignIn } from '../storage/audit-log';
import { LISTED_SESSIONS_MAX, listActiveSessions, type Session } from '../storage/sessions';
import { findUserById } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { directoryReads } from './directory-reads';
import { recordEvent } from './events';

/** Users (each with up to LISTED_SESSIONS_MAX live sessions) on one page of the listing. */
export const USERS_PER_PAGE = 20;

export interface SessionFilter {
  /** One user only. */
  userId?: string;
  /** How the session signed in: `password`, `passkey`, a provider's id... (exact). */
  provider?: string;
  /** Sessions signed in at or after this time (Unix seconds). */
  since?: number;
  /** The address the session signed in from starts with this (a whole address, or a prefix such as `203.0.113.`). */
  ip?: string;
  /** Where the session signed in: its country code, exactly (`DE`, `T1` for Tor). */
  country?: string;
  /** Any further test of a session (the device label, which the pages compute). */
  matches?: (session: Session) => boolean;
}

/** Whose sessions a row shows: the account as D1 holds it now. */
export type ListedUser = Pick<RecentSignIn, 'userId' | 'email' | 'disabled'>;

export interface LiveSessionRow {
  user: ListedUser;
  session: Session;
}

/** The users of a page and whether more follow: one named user (page 1 only), or those who signed in lately. */
async function usersOfPage(c: Context<AppEnv>, filter: SessionFilter, since: number, page: number): Promise<{ users: ListedUser[]; more: boolean }> {
  if (filter.userId !== undefined) {
    const user = page === 1 ? await findUserById(directoryReads(c), filter.userId) : null;
    return { users: user ? [{ userId: user.id, email: user.email, disabled: user.disabledAt !== null }] : [], more: false };
  }
  const users = await usersSignedInSince(directoryReads(c), since, { limit: USERS_PER_PAGE + 1, offset: (page - 1) * USERS_PER_PAGE });
  return { users: users.slice(0, USERS_PER_PAGE), more: users.length > USERS_PER_PAGE };
}

/**
 * One page of live sessions, grouped by user (users by their latest sign-in, sessions by last
 * use), and whether more users follow. A user's object lists only their
 * {@link LISTED_SESSIONS_MAX} most recently used sessions: users who reached that bound are
 * `crowded` (a session behind a hundred busier ones, an idle one kept by someone who signed in a
 * hundred more times, is not read, so no filter finds it). Audited as `admin_sessions_listed`.
 */
export async function liveSessionsPage(c: Context<AppEnv>, filter: SessionFilter, page: number, admin: string): Promise<{ rows: LiveSessionRow[]; more: boolean; crowded: ListedUser[] }> {
  const t = now();
  const oldest = t - c.get('config').SESSION_MAX_AGE;
  const since = Math.max(oldest, filter.since ?? oldest);
  const { users: shown, more } = await usersOfPage(c, filter, since, page);
  const sessions = await Promise.all(shown.map((u) => listActiveSessions(sessionsOf(c, u.userId), t)));
  const keep = (s: Session) =>
    (filter.provider === undefined || s.provider === filter.provider) &&
    (filter.since === undefined || s.createdAt >= filter.since) &&
    (filter.ip === undefined || (s.ip ?? '').toLowerCase().startsWith(filter.ip.toLowerCase())) &&
    (filter.country === undefined || s.country === filter.country) &&
    (filter.matches === undefined || filter.matches(s));
  const rows = shown.flatMap((user, i) => sessions[i]!.filter(keep).map((session) => ({ user, session })));
  await recordEvent(c, {
    event: 'admin_sessions_listed',
    outcome: 'success',
    userId: admin,
    detail: { admin, page, user: filter.userId ?? null, provider: filter.provider ?? null, since: filter.since ?? null, ip: filter.ip ?? null, country: filter.country ?? null },
  });
  return { rows, more, crowded: shown.filter((_, i) => sessions[i]!.length >= LISTED_SESSIONS_MAX) };
}
