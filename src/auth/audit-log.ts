/**
 * The audit log as administrators read it (the console's Audit log area): events filtered by
 * user, event name, outcome and time, newest first, a page at a time; and the filtered result
 * exported as NDJSON or CSV. An export is bounded ({@link EXPORT_MAX_EVENTS}, read in chunks
 * by keyset, answered once read, not streamed) and audited with the acting admin.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { isRecordedEvent, searchEvents, type EventFilter } from '../storage/audit-log';
import type { StoredEvent } from '../storage/events';
import { csvLine } from '../util/csv';
import { directoryReads } from './directory-reads';
import { recordEvent } from './events';

export type { EventFilter, StoredEvent };

/** The most events one export holds: the newest of the filtered result. */
export const EXPORT_MAX_EVENTS = 10_000;
const EXPORT_CHUNK = 1_000;

export type ExportFormat = 'ndjson' | 'csv';

/** A page of the filtered log, newest first; one more than `limit` tells the caller there is a next page. */
export function auditLogPage(c: Context<AppEnv>, filter: EventFilter, offset: number, limit: number): Promise<StoredEvent[]> {
  return searchEvents(directoryReads(c), filter, { offset }, limit);
}

/** Whether any stored event has this name: the filter's check that the name is one the log knows. */
export function isKnownEvent(c: Context<AppEnv>, event: string): Promise<boolean> {
  return isRecordedEvent(directoryReads(c), event);
}

const CSV_COLUMNS = ['id', 'at', 'event', 'outcome', 'user_id', 'ip', 'user_agent', 'detail'] as const;

const isoTime = (at: number) => new Date(at * 1000).toISOString();

/** One event as an export line: JSON (NDJSON) or a CSV record, the same fields in both. */
function exportLine(e: StoredEvent, format: ExportFormat): string {
  const fields = { id: e.id, at: isoTime(e.at), event: e.event, outcome: e.outcome, user_id: e.userId, ip: e.ip, user_agent: e.userAgent, detail: e.detail };
  if (format === 'ndjson') return `${JSON.stringify(fields)}\n`;
  return csvLine([fields.id, fields.at, fields.event, fields.outcome, fields.user_id, fields.ip, fields.user_agent, e.detail === null ? null : JSON.stringify(e.detail)]);
}

export interface AuditExport {
  body: string;
  /** How many events it holds. */
  count: number;
  /** True when the filtered result had more than {@link EXPORT_MAX_EVENTS}: the export holds the newest. */
  truncated: boolean;
}

/**
 * The filtered log as one file, newest first, at most {@link EXPORT_MAX_EVENTS} events, read in
 * chunks after the last one read (rows written meanwhile do not shift it). Audited as
 * `admin_audit_exported` with the admin, the format, the filter and the count.
 */
export async function exportAuditLog(c: Context<AppEnv>, filter: EventFilter, format: ExportFormat, admin: string): Promise<AuditExport> {
  const db = directoryReads(c);
  const lines: string[] = format === 'csv' ? [csvLine(CSV_COLUMNS)] : [];
  let count = 0;
  let truncated = false;
  let last: StoredEvent | undefined;
  for (;;) {
    const want = Math.min(EXPORT_CHUNK, EXPORT_MAX_EVENTS - count + 1);
    const chunk = await searchEvents(db, filter, last ? { before: { at: last.at, id: last.id } } : { offset: 0 }, want);
    for (const e of chunk) {
      if (count === EXPORT_MAX_EVENTS) {
        truncated = true;
        break;
      }
      lines.push(exportLine(e, format));
      count++;
    }
    if (truncated || chunk.length < want) break;
    last = chunk[chunk.length - 1];
  }
  await recordEvent(c, { event: 'admin_audit_exported', outcome: 'success', userId: admin, detail: { admin, format, events: count, truncated, filter: { ...filter } } });
  return { body: lines.join(''), count, truncated };
}
