/**
 * The console's Audit log area, mounted at `{AUTH_PREFIX}/admin/console/audit` behind the
 * console's guard (routes/console.ts):
 *
 * - `GET /?user=&event=&outcome=&from=&to=&page=`     the filtered events, newest first, 50 a page
 * - the same with `export=ndjson` or `export=csv`      the filtered events as a file (an
 *   attachment), at most EXPORT_MAX_EVENTS, the newest; audited as `admin_audit_exported`
 *
 * Filters: a user by address or id (an id also finds the events of a deleted account), an event
 * name the log holds (else 400), an outcome, and a time range in UTC (`to` included).
 */
import { Hono } from 'hono';
import * as v from 'valibot';
import { auditLogPage, EXPORT_MAX_EVENTS, exportAuditLog, isKnownEvent, type EventFilter } from '../auth/audit-log';
import type { AppEnv } from '../env';
import { readQuery } from '../http/body';
import { badRequest } from '../http/errors';
import { findUsersByIds } from '../storage/users';
import { AuditLogPage } from '../ui/console-audit-pages';
import { renderPage } from '../ui/render';
import { areaPath, consoleChrome } from './console-kit';
import { namedUser, optionalText, pageField, userField, whenField } from './console-filters';

const PAGE_SIZE = 50;
const MAX_PAGE = 400;
/** The detail shown on a row (the export has all of it). */
const DETAIL_SHOWN = 300;

const logQuery = v.object({
  user: userField,
  event: optionalText(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be an event name (lower-case letters, digits and _, up to 64)'))),
  outcome: optionalText(v.picklist(['success', 'failure', 'security'], 'must be success, failure or security')),
  from: whenField(),
  to: whenField(true),
  page: pageField(MAX_PAGE),
  export: v.optional(v.picklist(['ndjson', 'csv'], 'must be ndjson or csv')),
});

const FILTER_KEYS = ['user', 'event', 'outcome', 'from', 'to'] as const;

const FILES = {
  ndjson: { type: 'application/x-ndjson; charset=utf-8', extension: 'ndjson' },
  csv: { type: 'text/csv; charset=utf-8', extension: 'csv' },
} as const;

export const consoleAuditRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const q = readQuery(c, logQuery);
  if (q.from !== undefined && q.to !== undefined && q.from >= q.to) throw badRequest('Query "to": must be after "from".');
  if (q.event !== undefined && !(await isKnownEvent(c, q.event))) throw badRequest(`Query "event": no event named “${q.event}” is in the audit log.`);
  const named = q.user === undefined ? undefined : await namedUser(c, q.user, true);
  // An address no account has: the filter names it as given, which no event's user id is (an empty result, an empty export).
  const filter: EventFilter = { userId: named === null ? q.user : named?.id, event: q.event, outcome: q.outcome, from: q.from, to: q.to };
  const admin = c.get('user').id;
  const raw = c.req.query();
  const kept = Object.fromEntries(FILTER_KEYS.filter((k) => q[k] !== undefined).map((k) => [k, raw[k]!.trim()]));
  const base = areaPath(c, 'audit');

  if (q.export !== undefined) {
    const file = await exportAuditLog(c, filter, q.export, admin);
    const kind = FILES[q.export];
    const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '-');
    return c.body(file.body, 200, {
      'content-type': kind.type,
      'content-disposition': `attachment; filename="gatehouse-audit-${stamp}.${kind.extension}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'gatehouse-export-events': String(file.count),
      'gatehouse-export-truncated': String(file.truncated),
    });
  }

  const found = await auditLogPage(c, filter, (q.page - 1) * PAGE_SIZE, PAGE_SIZE + 1);
  const events = found.slice(0, PAGE_SIZE);
  const emails = new Map((await findUsersByIds(c.env.DB, [...new Set(events.flatMap((e) => (e.userId ? [e.userId] : [])))])).map((u) => [u.id, u.email]));
  const href = (extra: Record<string, string>) => `${base}?${new URLSearchParams({ ...kept, ...extra })}`;
  return renderPage(c, (nonce, brand) =>
    AuditLogPage({
      ...consoleChrome(c, nonce, brand),
      base,
      filters: { user: kept.user ?? '', event: kept.event ?? '', outcome: kept.outcome ?? '', from: kept.from ?? '', to: kept.to ?? '' },
      noSuchUser: named === null,
      page: q.page,
      events: events.map((e) => {
        const detail = e.detail === null ? null : JSON.stringify(e.detail);
        const email = e.userId === null ? null : (emails.get(e.userId) ?? null);
        return {
          id: e.id,
          at: e.at,
          event: e.event,
          outcome: e.outcome,
          userId: e.userId,
          email,
          userHref: e.userId !== null && email !== null ? areaPath(c, 'users', `/${encodeURIComponent(e.userId)}`) : null,
          ip: e.ip,
          detail: detail === null ? null : detail.length > DETAIL_SHOWN ? `${detail.slice(0, DETAIL_SHOWN)}…` : detail,
        };
      }),
      exports: { ndjson: href({ export: 'ndjson' }), csv: href({ export: 'csv' }) },
      exportMax: EXPORT_MAX_EVENTS,
      previous: q.page > 1 ? href({ page: String(q.page - 1) }) : null,
      next: found.length > PAGE_SIZE && q.page < MAX_PAGE ? href({ page: String(q.page + 1) }) : null,
    }),
  );
});
