/**
 * The console's Sessions area, mounted at `{AUTH_PREFIX}/admin/console/sessions` behind the
 * console's guard (routes/console.ts):
 *
 * - `GET  /?user=&provider=&since=&ip=&country=&device=&page=`   live sessions across users, filtered, a page at a time
 * - `POST /end`   `s0`...`s99=<user id>/<session id>` (the checked rows), or `one=<...>` (a row's
 *                 own button): end them, at most {@link MAX_PER_POST} a post
 *
 * Ending is confirmed first (console-kit.ts) and done by auth/user-administration.ts
 * `endUserSessions`, which audits it with the acting admin; the session ends as every ending
 * does (the fence, KV, apps' back-channel logout, origins' notices).
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { liveSessionsPage, USERS_PER_PAGE } from '../auth/session-overview';
import { endUserSessions } from '../auth/user-administration';
import type { AppEnv } from '../env';
import { readQuery } from '../http/body';
import { badRequest } from '../http/errors';
import { enabledProviders } from '../providers/registry';
import { LISTED_SESSIONS_MAX } from '../storage/sessions';
import { findUsersByIds } from '../storage/users';
import { SessionListPage } from '../ui/console-sessions-pages';
import { deviceLabel } from '../ui/device-label';
import { placeLabel } from '../ui/place-label';
import { renderPage } from '../ui/render';
import { areaPath, backWithNotice, confirmAction, consoleChrome, noticeFrom, readActionForm } from './console-kit';
import { namedUser, optionalText, pageField, userField, whenField } from './console-filters';

/** The most sessions one post ends (and one page offers to select). */
export const MAX_PER_POST = 100;
const MAX_PAGE = 500;

const NOTICES = {
  ended: 'The sessions you selected have ended, with their tokens.',
  none_ended: 'None of the selected sessions was still live: nothing has changed.',
} as const;

const listQuery = v.object({
  user: userField,
  provider: optionalText(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be a sign-in method or provider id (letters, digits, _ . : -, up to 64)'))),
  since: whenField(),
  ip: optionalText(v.pipe(v.string(), v.regex(/^[0-9A-Fa-f:.]{1,45}$/, 'must be an IP address or its start (digits, a-f, . and :)'))),
  // As http/client.ts keeps it: a code in either case is taken, brought to capitals. Checked
  // before capitalising, since toUpperCase turns some other letters into codes (ß into SS, ı into I).
  country: optionalText(v.pipe(v.string(), v.regex(/^(?:[A-Za-z]{2}|[Tt]1)$/, 'must be a two-letter country code (DE, or T1 for Tor)'), v.toUpperCase())),
  device: optionalText(v.pipe(v.string(), v.maxLength(64, 'is too long (64 characters at most)'))),
  page: pageField(MAX_PAGE),
});

/** `<user id>/<session id>`, as the rows carry them. */
const SESSION_REF = /^([A-Za-z0-9_-]{1,64})\/([A-Za-z0-9_-]{1,64})$/;
const sessionRef = v.pipe(v.string(), v.regex(SESSION_REF, 'must be a session of the list'));

const endFields = {
  one: v.optional(sessionRef),
  ...Object.fromEntries(Array.from({ length: MAX_PER_POST }, (_, i) => [`s${i}`, v.optional(sessionRef)] as const)),
};

/** The selection of a post, grouped by user: `one` alone when a row's own button sent it. */
function selection(data: Record<string, string | undefined>): Map<string, string[]> {
  const refs = data.one !== undefined ? [data.one] : Object.entries(data).filter(([k, val]) => /^s\d+$/.test(k) && val !== undefined).map(([, val]) => val!);
  const byUser = new Map<string, string[]>();
  for (const ref of new Set(refs)) {
    const [, userId, sessionId] = SESSION_REF.exec(ref)!;
    byUser.set(userId!, [...(byUser.get(userId!) ?? []), sessionId!]);
  }
  return byUser;
}

/** The query of a listing, without `page`: kept by the pager. */
const filterQuery = (q: v.InferOutput<typeof listQuery>, raw: Record<string, string>) =>
  Object.fromEntries((['user', 'provider', 'since', 'ip', 'country', 'device'] as const).filter((k) => q[k] !== undefined).map((k) => [k, raw[k]!.trim()]));

export const consoleSessionsRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const q = readQuery(c, listQuery);
    const admin = c.get('user').id;
    const base = areaPath(c, 'sessions');
    const named = q.user === undefined ? undefined : await namedUser(c, q.user, false);
    const device = q.device?.toLowerCase();
    const found =
      named === null
        ? { rows: [], more: false, crowded: [] }
        : await liveSessionsPage(c, { userId: named?.id, provider: q.provider, since: q.since, ip: q.ip, country: q.country, matches: device === undefined ? undefined : (s) => deviceLabel(s.userAgent).toLowerCase().includes(device) }, q.page, admin);
    const config = c.get('config');
    const providerNames = new Map(enabledProviders(config).map((p) => [p.id, p.name]));
    const shown = found.rows.slice(0, MAX_PER_POST);
    const keep = filterQuery(q, c.req.query());
    const pageHref = (page: number) => `${base}?${new URLSearchParams({ ...keep, page: String(page) })}`;
    return renderPage(c, (nonce, brand) =>
      SessionListPage({
        ...consoleChrome(c, nonce, brand),
        base,
        notice: noticeFrom(c, NOTICES),
        filters: { user: keep.user ?? '', provider: keep.provider ?? '', since: keep.since ?? '', ip: keep.ip ?? '', country: keep.country ?? '', device: keep.device ?? '' },
        noSuchUser: named === null,
        page: q.page,
        sessions: shown.map(({ user, session: s }) => ({
          ref: `${user.userId}/${s.id}`,
          userId: user.userId,
          email: user.email,
          userHref: areaPath(c, 'users', `/${encodeURIComponent(user.userId)}`),
          disabled: user.disabled,
          device: deviceLabel(s.userAgent),
          place: placeLabel(s.country),
          ip: s.ip,
          provider: s.provider ? (providerNames.get(s.provider) ?? s.provider) : null,
          methods: s.amr.length ? `methods: ${s.amr.join(', ')}` : '',
          createdAt: s.createdAt,
          lastUsedAt: s.lastUsedAt,
        })),
        cut: found.rows.length > MAX_PER_POST,
        crowded: found.crowded.map((u) => ({ email: u.email, userHref: areaPath(c, 'users', `/${encodeURIComponent(u.userId)}`) })),
        listedPerUser: LISTED_SESSIONS_MAX,
        // The listing finds users by their sign-in events: once those are deleted, a session still live is found only on its user's page.
        retentionGap: config.AUDIT_RETENTION_DAYS * 86_400 < config.SESSION_MAX_AGE ? { eventDays: config.AUDIT_RETENTION_DAYS, sessionDays: Math.ceil(config.SESSION_MAX_AGE / 86_400) } : null,
        maxPerPost: MAX_PER_POST,
        usersPerPage: USERS_PER_PAGE,
        previous: q.page > 1 ? pageHref(q.page - 1) : null,
        next: found.more && q.page < MAX_PAGE ? pageHref(q.page + 1) : null,
        pagesEnd: found.more && q.page === MAX_PAGE ? MAX_PAGE : null,
      }),
    );
  })
  .post('/end', async (c: Context<AppEnv>) => {
    const { data, confirmed } = await readActionForm(c, endFields);
    const chosen = selection(data);
    const count = [...chosen.values()].reduce((n, ids) => n + ids.length, 0);
    if (count === 0) throw badRequest('Select at least one session to end.');
    const users = await findUsersByIds(c.env.DB, [...chosen.keys()]);
    const base = areaPath(c, 'sessions');
    if (!confirmed) {
      const me = c.get('user');
      const ownSession = chosen.get(me.id)?.includes(me.sessionId) ?? false;
      const emailOf = new Map(users.map((u) => [u.id, u.email]));
      const fields = Object.fromEntries([...chosen].flatMap(([userId, ids]) => ids.map((id) => `${userId}/${id}`)).map((ref, i) => [`s${i}`, ref]));
      return confirmAction(c, {
        area: 'sessions',
        title: count === 1 ? 'End this session?' : `End these ${count} sessions?`,
        consequences: [
          ...[...chosen].map(([userId, ids]) => `${emailOf.get(userId) ?? `An account that no longer exists (${userId}): skipped`}: ${ids.length === 1 ? 'one session' : `${ids.length} sessions`}.`),
          ...(ownSession ? ['This includes the session you are using now: you will be signed out.'] : []),
          'Each ends now with its tokens, and the apps and origins it signed in to are told. Sessions already ended are skipped.',
          'The accounts stay enabled: their owners can sign in again.',
        ],
        action: `${base}/end`,
        fields,
        confirmLabel: count === 1 ? 'End the session' : `End ${count} sessions`,
        danger: true,
        cancelHref: base,
      });
    }
    const admin = c.get('user').id;
    let ended = 0;
    for (const user of users) ended += await endUserSessions(c, user, chosen.get(user.id)!, admin);
    return backWithNotice(c, base, ended > 0 ? 'ended' : 'none_ended');
  });
