/**
 * The console's Audit log area (routes/console-audit.ts): the filter form, a page of events
 * newest first with security events marked, and links exporting the filtered result.
 */
import { ConsolePage, When, type ConsoleChrome, Pager } from './console-pages';
import { Field } from './components';

export interface AuditRow {
  id: number;
  at: number;
  event: string;
  outcome: 'success' | 'failure' | 'security';
  userId: string | null;
  /** The user's address, when the account still exists. */
  email: string | null;
  /** The user's page in the console, when the event names a user. */
  userHref: string | null;
  ip: string | null;
  /** The event's detail as JSON, or null. */
  detail: string | null;
}

export interface AuditFilters {
  user: string;
  event: string;
  outcome: string;
  from: string;
  to: string;
}

export interface AuditLogProps extends ConsoleChrome {
  base: string;
  filters: AuditFilters;
  noSuchUser: boolean;
  page: number;
  events: AuditRow[];
  exports: { ndjson: string; csv: string };
  exportMax: number;
  previous: string | null;
  next: string | null;
}

const OUTCOMES = [
  ['', 'Any'],
  ['success', 'Success'],
  ['failure', 'Failure'],
  ['security', 'Security'],
] as const;

export function AuditLogPage(p: AuditLogProps) {
  const f = p.filters;
  return (
    <ConsolePage {...p} title="Audit log" area="audit">
      <section class="card" aria-labelledby="filter-heading">
        <h2 id="filter-heading">Filter</h2>
        <form method="get" action={p.base} role="search" class="search-row" id="audit-filters">
          <Field id="f-user" name="user" label="User (email or id)" value={f.user} required={false} maxlength={254} autocomplete="off" />
          <Field id="f-event" name="event" label="Event" value={f.event} required={false} maxlength={64} autocomplete="off" />
          <div class="field">
            <label for="f-outcome">Outcome</label>
            <select id="f-outcome" name="outcome">
              {OUTCOMES.map(([value, label]) => (
                <option value={value} selected={f.outcome === value}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <Field id="f-from" name="from" label="From (UTC)" value={f.from} required={false} maxlength={25} autocomplete="off" />
          <Field id="f-to" name="to" label="Until (UTC, included)" value={f.to} required={false} maxlength={25} autocomplete="off" />
          <button type="submit" class="button primary">
            Filter
          </button>
        </form>
        <p class="muted" id="filter-help">
          Event: a name such as <code>login</code> or <code>admin_user_disabled</code>. Times: <code>YYYY-MM-DD</code> or <code>YYYY-MM-DDTHH:MM</code>, UTC; “until” includes the day or minute it names.
        </p>
        <p id="exports">
          Export these events: <a href={p.exports.ndjson} id="export-ndjson" download>NDJSON</a> · <a href={p.exports.csv} id="export-csv" download>CSV</a>
          <span class="muted"> (the newest {p.exportMax.toLocaleString('en')} at most; each export is audited)</span>
        </p>
      </section>
      <section class="card" aria-labelledby="events-heading">
        <h2 id="events-heading">Events, newest first</h2>
        {p.noSuchUser ? (
          <p class="muted" id="no-events">
            No account has this address. Events of a deleted account are found by its user id.
          </p>
        ) : p.events.length === 0 ? (
          <p class="muted" id="no-events">
            No events match.
          </p>
        ) : (
          <table id="events" class="stack">
            <thead>
              <tr>
                <th scope="col">Event and user</th>
                <th scope="col">When</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {p.events.map((e) => (
                <tr data-event={e.event} data-outcome={e.outcome} class={e.outcome === 'security' ? 'security' : undefined}>
                  <td>
                    <strong>{e.event}</strong>
                    {e.outcome === 'security' ? <span class="tag warn">security</span> : e.outcome === 'failure' ? <span class="tag">failure</span> : null}
                    {e.userId !== null && <div class="wrap">{e.userHref ? <a href={e.userHref}>{e.email ?? e.userId}</a> : e.userId}</div>}
                    {e.detail && <div class="muted wrap detail">{e.detail}</div>}
                  </td>
                  <td data-label="When" class="nowrap">
                    <When at={e.at} />
                  </td>
                  <td data-label="From">
                    {e.ip ?? '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager page={p.page} previous={p.previous} next={p.next} />
      </section>
    </ConsolePage>
  );
}
