/**
 * The console's Users area (routes/console-users.ts): the search with its pages, and one user
 * with everything an administrator acts on. Every action is a form post whose first answer is
 * the confirmation page (ui/console-pages.tsx).
 */
import { ActionForm, ConsolePage, DisabledSince, Pager, Section, Tag, When, type ConsoleChrome } from './console-pages';
import { Field } from './components';

export interface UserRow {
  id: string;
  email: string;
  name: string | null;
  disabled: boolean;
  roles: string[];
  createdAt: number;
}

export interface UserSearchProps extends ConsoleChrome {
  /** The area's path: the search form's action, and the base of each user's link. */
  base: string;
  q: string;
  page: number;
  users: UserRow[];
  /** Links to the neighbouring pages, when there are any. */
  previous: string | null;
  next: string | null;
}

/** A small label beside a user: "disabled", "admin". */
export function UserSearchPage(p: UserSearchProps) {
  return (
    <ConsolePage {...p} title="Users" area="users">
      <section class="card" aria-labelledby="search-heading">
        <h2 id="search-heading">Find a user</h2>
        <form method="get" action={p.base} role="search" class="search-row">
          <Field id="user-search" name="q" label="Email or name contains" type="search" value={p.q} required={false} maxlength={254} autocomplete="off" />
          <button type="submit" class="button primary">
            Search
          </button>
        </form>
      </section>
      <section class="card" aria-labelledby="results-heading">
        <h2 id="results-heading">{p.q ? `Users matching “${p.q}”` : 'All users, newest first'}</h2>
        {p.users.length === 0 ? (
          <p class="muted" id="no-users">
            No users{p.q ? ' match this search' : ''}.
          </p>
        ) : (
          <table id="users" class="stack">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Roles</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {p.users.map((u) => (
                <tr data-user={u.id}>
                  <td>
                    <a href={`${p.base}/${encodeURIComponent(u.id)}`} class="user-link">
                      {u.email}
                    </a>
                    {u.name && <div class="muted">{u.name}</div>}
                    {u.disabled && <Tag tone="warn">disabled</Tag>}
                  </td>
                  <td data-label="Roles">{u.roles.length ? u.roles.join(', ') : <span class="muted">none</span>}</td>
                  <td data-label="Created">
                    <When at={u.createdAt} />
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

export interface UserDetail {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  disabledAt: number | null;
  createdAt: number;
  hasPassword: boolean;
  /** Stored roles (the ones an admin can revoke). */
  roles: string[];
  /** Roles the user holds through ADMIN_EMAILS and not stored. */
  grantedBySetting: string[];
  identities: { provider: string; email: string | null; linkedAt: number; lastUsedAt: number | null }[];
  totp: boolean;
  recoveryCodesLeft: number;
  passkeys: { name: string; synced: boolean; createdAt: number; lastUsedAt: number | null }[];
  /** `place`: where each was started, for people (ui/place-label.ts). */
  sessions: { id: string; device: string; place: string; ip: string | null; createdAt: number; lastUsedAt: number; provider: string | null; methods: string }[];
  /** The directory's (SCIM) groups; null when the directory does not manage the account. */
  directoryGroups: string[] | null;
  /** Groups the sign-in providers gave the live sessions. */
  providerGroups: string[];
  events: { at: number; event: string; outcome: string; ip: string | null }[];
}

export interface UserPageProps extends ConsoleChrome {
  /** The user's own path: the base of every action. */
  base: string;
  /** The area's path ("All users"). */
  back: string;
  notice: string | null;
  user: UserDetail;
  /** The admin looks at their own account: no disabling it, no revoking their own admin role. */
  self: boolean;
  /** A reset link can be sent (a mail transport, and the user has a password). */
  canMailReset: boolean;
}

function Empty(p: { id?: string; children: string }) {
  return (
    <p class="muted" id={p.id}>
      {p.children}
    </p>
  );
}

export function UserPage(p: UserPageProps) {
  const u = p.user;
  const action = (name: string) => `${p.base}/${name}`;
  return (
    <ConsolePage {...p} title={u.email} area="users" notice={p.notice}>
      <a class="back" href={p.back}>
        <span aria-hidden="true">← </span>All users
      </a>
      <Section id="profile" title="Account">
        <table aria-label="Account">
          <tbody>
            <tr>
              <th scope="row">Status</th>
              <td id="status">{u.disabledAt === null ? 'Active' : <DisabledSince at={u.disabledAt} />}</td>
            </tr>
            <tr>
              <th scope="row">Email</th>
              <td class="wrap">
                {u.email} {u.emailVerified ? '(verified)' : '(not verified)'}
              </td>
            </tr>
            {u.name && (
              <tr>
                <th scope="row">Name</th>
                <td>{u.name}</td>
              </tr>
            )}
            <tr>
              <th scope="row">User id</th>
              <td class="wrap">
                <code>{u.id}</code>
              </td>
            </tr>
            <tr>
              <th scope="row">Created</th>
              <td>
                <When at={u.createdAt} />
              </td>
            </tr>
          </tbody>
        </table>
      </Section>

      <Section id="roles" title="Roles">
        {u.roles.length === 0 && u.grantedBySetting.length === 0 ? (
          <Empty id="no-roles">No roles.</Empty>
        ) : (
          <ul class="plain rows" id="role-list">
            {u.roles.map((role) => (
              <li data-role={role}>
                <strong>{role}</strong>
                {!(p.self && role === 'admin') && <ActionForm action={action('roles/revoke')} fields={{ role_name: role }} label={`Revoke ${role}`} />}
              </li>
            ))}
            {u.grantedBySetting.map((role) => (
              <li data-role={role}>
                <strong>{role}</strong> <span class="muted">(from ADMIN_EMAILS: change the setting to remove it)</span>
              </li>
            ))}
          </ul>
        )}
        <form method="post" action={action('roles/grant')} id="grant-role">
          <Field id="grant-role-name" name="role_name" label="Grant a role" maxlength={64} pattern="[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}" hint="Letters, digits and _ . : - (up to 64). Tokens carry it from their next refresh." />
          <button type="submit" class="button secondary">
            Grant
          </button>
        </form>
      </Section>

      <Section id="sign-in" title="Sign-in methods and second factors">
        <ul class="plain rows" id="methods">
          <li>Password: {u.hasPassword ? 'set' : 'none'}</li>
          <li id="totp">Authenticator app: {u.totp ? `on (${u.recoveryCodesLeft} recovery codes left)` : 'off'}</li>
          {u.identities.map((i) => (
            <li data-provider={i.provider}>
              {i.provider}
              {i.email ? ` (${i.email})` : ''}, linked <When at={i.linkedAt} />
              {i.lastUsedAt !== null && (
                <>
                  , last used <When at={i.lastUsedAt} />
                </>
              )}
            </li>
          ))}
        </ul>
        <h3>Passkeys</h3>
        {u.passkeys.length === 0 ? (
          <Empty id="no-passkeys">No passkeys.</Empty>
        ) : (
          <ul class="plain rows" id="passkeys">
            {u.passkeys.map((k) => (
              <li>
                {k.name} {k.synced ? '(synced)' : '(this device only)'}, added <When at={k.createdAt} />
                {k.lastUsedAt !== null && (
                  <>
                    , last used <When at={k.lastUsedAt} />
                  </>
                )}
              </li>
            ))}
          </ul>
        )}
      </Section>

      <Section id="sessions-section" title={`Sessions (${u.sessions.length})`}>
        {u.sessions.length === 0 ? (
          <Empty id="no-sessions">No live sessions.</Empty>
        ) : (
          <table id="sessions" class="stack">
            <thead>
              <tr>
                <th scope="col">Device and place</th>
                <th scope="col">Last used</th>
                <th scope="col">Signed in</th>
              </tr>
            </thead>
            <tbody>
              {u.sessions.map((s) => (
                <tr data-session={s.id}>
                  <td>
                    {s.device}
                    <div class="place">{s.place}</div>
                    <div class="muted">{s.ip ?? 'IP address unknown'}</div>
                  </td>
                  <td data-label="Last used">
                    <When at={s.lastUsedAt} />
                  </td>
                  <td data-label="Signed in">
                    <When at={s.createdAt} />
                    <div class="muted">
                      {s.provider ? `with ${s.provider}, ` : ''}
                      {s.methods}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section id="groups" title="Groups">
        <ul class="plain rows" id="group-list">
          <li>
            Directory (SCIM): {u.directoryGroups === null ? <span class="muted">not managed by the directory</span> : u.directoryGroups.length ? u.directoryGroups.join(', ') : 'none'}
          </li>
          <li>From sign-in providers: {u.providerGroups.length ? u.providerGroups.join(', ') : <span class="muted">none</span>}</li>
        </ul>
      </Section>

      <Section id="events" title="Recent events">
        {u.events.length === 0 ? (
          <Empty>No events.</Empty>
        ) : (
          <table id="event-list" class="stack">
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">When</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {u.events.map((e) => (
                <tr data-event={e.event}>
                  <td>
                    {e.event} {e.outcome !== 'success' && <Tag tone="warn">{e.outcome}</Tag>}
                  </td>
                  <td data-label="When">
                    <When at={e.at} />
                  </td>
                  <td data-label="From">{e.ip ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section id="actions" title="Actions" danger>
        <div class="actions" id="user-actions">
          {u.disabledAt === null ? (
            !p.self && <ActionForm action={action('disable')} label="Disable" danger id="disable" />
          ) : (
            <ActionForm action={action('enable')} label="Enable" id="enable" />
          )}
          <ActionForm action={action('sign-out')} label="Sign out everywhere" danger id="sign-out" />
          <ActionForm action={action('second-factors/reset')} label="Reset second factors" danger id="reset-factors" />
          {p.canMailReset && <ActionForm action={action('password-reset')} label="Send a password reset link" id="password-reset" />}
        </div>
        {!p.canMailReset && <p class="muted">{u.hasPassword ? 'No reset link: this gateway has no mail transport.' : 'No reset link: the user has no password.'}</p>}
      </Section>
    </ConsolePage>
  );
}
