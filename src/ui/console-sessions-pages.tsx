/**
 * The console's Sessions area (routes/console-sessions.ts): live sessions across users, with
 * filters and pages; one form whose checkboxes select sessions to end together, and a button on
 * each row to end that one. Both post to the end action, whose first answer is the
 * confirmation page (ui/console-pages.tsx).
 */
import { ConsolePage, When, type ConsoleChrome, Pager } from './console-pages';
import { Field } from './components';

export interface SessionRow {
  /** `<user id>/<session id>`: the value the end action takes. */
  ref: string;
  userId: string;
  email: string;
  userHref: string;
  disabled: boolean;
  device: string;
  /** Where it was started, for people (ui/place-label.ts). */
  place: string;
  ip: string | null;
  provider: string | null;
  methods: string;
  createdAt: number;
  lastUsedAt: number;
}

export interface SessionFilters {
  user: string;
  provider: string;
  since: string;
  ip: string;
  country: string;
  device: string;
}

export interface SessionListProps extends ConsoleChrome {
  base: string;
  notice: string | null;
  filters: SessionFilters;
  /** Set when the user filter names no account. */
  noSuchUser: boolean;
  page: number;
  sessions: SessionRow[];
  /** The page had more sessions than one post may end: these are the first. */
  cut: boolean;
  /** Users on the page whose object lists only their most recently used sessions: others of theirs may be live. */
  crowded: { email: string; userHref: string }[];
  /** How many sessions of one user the listing reads. */
  listedPerUser: number;
  /** Set when sign-in events are deleted before the sessions they began can end. */
  retentionGap: { eventDays: number; sessionDays: number } | null;
  maxPerPost: number;
  usersPerPage: number;
  previous: string | null;
  next: string | null;
  /** Set on the last page when more users follow than the pages reach (their number). */
  pagesEnd: number | null;
}

export function SessionListPage(p: SessionListProps) {
  const f = p.filters;
  return (
    <ConsolePage {...p} title="Sessions" area="sessions" notice={p.notice}>
      <section class="card" aria-labelledby="filter-heading">
        <h2 id="filter-heading">Filter</h2>
        <form method="get" action={p.base} role="search" class="search-row" id="session-filters">
          <Field id="f-user" name="user" label="User (email or id)" value={f.user} required={false} maxlength={254} autocomplete="off" />
          <Field id="f-provider" name="provider" label="Signed in with" value={f.provider} required={false} maxlength={64} autocomplete="off" />
          <Field id="f-since" name="since" label="Signed in since (UTC)" value={f.since} required={false} maxlength={25} autocomplete="off" />
          <Field id="f-ip" name="ip" label="IP address starts with" value={f.ip} required={false} maxlength={45} autocomplete="off" />
          <Field id="f-country" name="country" label="Country (code)" value={f.country} required={false} maxlength={2} autocomplete="off" />
          <Field id="f-device" name="device" label="Device contains" value={f.device} required={false} maxlength={64} autocomplete="off" />
          <button type="submit" class="button primary">
            Filter
          </button>
        </form>
        <p class="muted" id="filter-help">
          Signed in with: <code>password</code>, <code>passkey</code>, <code>email_code</code> or a provider’s id. Since: <code>YYYY-MM-DD</code> or <code>YYYY-MM-DDTHH:MM</code>, UTC. Country: the two-letter code of where the session signed in (<code>DE</code>, <code>T1</code> for Tor), as the list shows it in brackets. Device: as the list shows it (“Firefox on Linux”).
        </p>
      </section>
      <section class="card" aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Live sessions</h2>
        <p class="muted">
          Page {p.page} covers up to {p.usersPerPage} users, those who signed in most recently first, and their live sessions, most recently used first.
        </p>
        {p.retentionGap && (
          <p class="muted" id="retention-gap">
            Sign-in events are kept {p.retentionGap.eventDays} days, sessions up to {p.retentionGap.sessionDays} days: older ones show only when filtered by user.
          </p>
        )}
        {p.crowded.length > 0 && (
          <div id="crowded">
            {p.crowded.map((u) => (
              <p class="muted">
                <a href={u.userHref}>{u.email}</a> has at least {p.listedPerUser} live sessions; only the {p.listedPerUser} last used are read. “Sign out everywhere” on their page ends all.
              </p>
            ))}
          </div>
        )}
        {p.noSuchUser ? (
          <p class="muted" id="no-sessions">
            No account has this address or id.
          </p>
        ) : p.sessions.length === 0 ? (
          <p class="muted" id="no-sessions">
            No live sessions on this page{p.next ? ': try the next page' : ''}.
          </p>
        ) : (
          <form method="post" action={`${p.base}/end`} id="end-sessions">
            {p.cut && (
              <p class="muted" id="cut">
                This page has more sessions than one request may end ({p.maxPerPost}): the first {p.maxPerPost} are shown. Narrow the filters to see the others.
              </p>
            )}
            <table id="sessions" class="stack">
              <thead>
                <tr>
                  <th scope="col">
                    <span class="visually-hidden">Select</span>
                  </th>
                  <th scope="col">User and device</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Signed in</th>
                  <th scope="col">
                    <span class="visually-hidden">End</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {p.sessions.map((s, i) => (
                  <tr data-session={s.ref}>
                    <td data-label="Select">
                      <input type="checkbox" name={`s${i}`} value={s.ref} id={`select-${i}`} aria-label={`Select the session of ${s.email} on ${s.device}`} />
                    </td>
                    <td>
                      <a href={s.userHref} class="user-link">
                        {s.email}
                      </a>
                      {s.disabled && <span class="tag warn">disabled</span>}
                      <div>{s.device}</div>
                      <div class="place">{s.place}</div>
                      <div class="muted">{s.ip ?? 'IP address unknown'}</div>
                    </td>
                    <td data-label="Last used" class="nowrap">
                      <When at={s.lastUsedAt} />
                    </td>
                    <td data-label="Signed in">
                      <When at={s.createdAt} />
                      <div class="muted">
                        {s.provider ? `with ${s.provider}` : ''}
                        {s.provider && s.methods ? ', ' : ''}
                        {s.methods}
                      </div>
                    </td>
                    <td>
                      <button type="submit" name="one" value={s.ref} class="button secondary" aria-label={`End the session of ${s.email} on ${s.device}`}>
                        End
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div class="actions">
              <button type="submit" class="button danger" id="end-selected">
                End the selected sessions
              </button>
            </div>
            <p class="muted">Each ending is confirmed first. At most {p.maxPerPost} sessions a request.</p>
          </form>
        )}
        {p.pagesEnd && (
          <p class="muted" id="pages-end">
            More users signed in than these {p.pagesEnd} pages reach: filter by user.
          </p>
        )}
        <Pager page={p.page} previous={p.previous} next={p.next} />
      </section>
    </ConsolePage>
  );
}
