/**
 * The console's Apps and machines area (routes/console-apps.ts): OAuth clients (the list with
 * its filter, one client, the registration form), SCIM tokens, and the consents users gave to
 * apps. Every action is a form post whose first answer is the confirmation page
 * (ui/console-pages.tsx); a new secret or token is shown once, on {@link SecretShownPage}.
 */
import { Field } from './components';
import { ActionForm, ConsolePage, DisabledSince, Pager, Section, Tag, When, type ConsoleChrome } from './console-pages';

export type ClientClass = 'app' | 'public' | 'service';

const CLASS_NAMES: Record<ClientClass, string> = { app: 'app', public: 'public', service: 'service' };

/** The area's own navigation: clients, SCIM tokens, consents. */
export interface AppsLinks {
  clients: string;
  newClient: string;
  scimTokens: string;
  consents: string;
}

function AppsNav(p: { links: AppsLinks; current: 'clients' | 'scim-tokens' | 'consents' }) {
  const item = (id: typeof p.current, href: string, label: string) => (
    <a href={href} aria-current={p.current === id ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <nav class="toc" aria-label="Apps and machines">
      {item('clients', p.links.clients, 'Clients')}
      {item('scim-tokens', p.links.scimTokens, 'SCIM tokens')}
      {item('consents', p.links.consents, 'Consent grants')}
    </nav>
  );
}

function List(p: { id: string; items: string[]; empty: string }) {
  return p.items.length === 0 ? (
    <span class="muted">{p.empty}</span>
  ) : (
    <ul class="plain" id={p.id}>
      {p.items.map((x) => (
        <li class="wrap">{x}</li>
      ))}
    </ul>
  );
}

/** The overlap choices a rotation offers, in seconds. */
export const OVERLAP_CHOICES: readonly { seconds: number; label: string }[] = [
  { seconds: 0, label: 'None: the old one stops now' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 86_400, label: '1 day' },
  { seconds: 7 * 86_400, label: '7 days' },
  { seconds: 30 * 86_400, label: '30 days (the longest)' },
];

/** A rotation form: the overlap to keep the old secret for, and the button. */
function RotateForm(p: { action: string; id: string; what: string }) {
  return (
    <form method="post" action={p.action} id={p.id}>
      <div class="field">
        <label for={`${p.id}-overlap`}>Keep the old {p.what} working for</label>
        <select id={`${p.id}-overlap`} name="overlap_seconds">
          {OVERLAP_CHOICES.map((o) => (
            <option value={String(o.seconds)} selected={o.seconds === 86_400}>
              {o.label}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" class="button secondary">
        Rotate the {p.what}
      </button>
    </form>
  );
}

// ---- Clients ----

export interface ClientRow {
  id: string;
  name: string;
  class: ClientClass;
  authMethod: string;
  firstParty: boolean;
  disabled: boolean;
  createdAt: number;
}

export interface ClientListProps extends ConsoleChrome {
  links: AppsLinks;
  notice: string | null;
  /** The filter in force, or null for every client. */
  ofClass: ClientClass | null;
  /** Each filter's link (the list's own path with `?kind=`). */
  filters: { label: string; href: string; current: boolean }[];
  clients: ClientRow[];
  /** Each client's page: the list's base path. */
  clientBase: string;
  previous: string | null;
  next: string | null;
  page: number;
}

export function ClientListPage(p: ClientListProps) {
  return (
    <ConsolePage {...p} title="Apps and machines" area="apps" notice={p.notice}>
      <AppsNav links={p.links} current="clients" />
      <Section id="clients-section" title={p.ofClass ? `Clients: ${CLASS_NAMES[p.ofClass]}` : 'Clients'}>
        <nav class="toc" aria-label="Show" id="client-filters">
          {p.filters.map((f) => (
            <a href={f.href} aria-current={f.current ? 'page' : undefined}>
              {f.label}
            </a>
          ))}
        </nav>
        {p.clients.length === 0 ? (
          <p class="muted" id="no-clients">
            No clients{p.ofClass ? ' of this kind' : ''}.
          </p>
        ) : (
          <table id="clients" class="stack">
            <thead>
              <tr>
                <th scope="col">Client</th>
                <th scope="col">Kind</th>
                <th scope="col">Authenticates with</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {p.clients.map((k) => (
                <tr data-client={k.id}>
                  <td>
                    <a href={`${p.clientBase}/${encodeURIComponent(k.id)}`} class="wrap">
                      {k.name}
                    </a>
                    <div class="muted wrap">{k.id}</div>
                    {k.firstParty && <Tag>first-party</Tag>}
                    {k.disabled && <Tag tone="warn">disabled</Tag>}
                  </td>
                  <td data-label="Kind">{CLASS_NAMES[k.class]}</td>
                  <td data-label="Authenticates with">{k.authMethod}</td>
                  <td data-label="Created">
                    <When at={k.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager page={p.page} previous={p.previous} next={p.next} />
        <p>
          <a href={p.links.newClient} class="button secondary" id="register-client">
            Register a client
          </a>
        </p>
      </Section>
    </ConsolePage>
  );
}

export interface ClientDetail extends ClientRow {
  source: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  allowedScopes: string[];
  allowedAudiences: string[];
  backchannelLogoutUri: string | null;
  /** The number of public keys (private_key_jwt), or null. */
  keys: number | null;
  hasSecret: boolean;
  /** While a rotated secret still works: when it stops. */
  overlapEnd: number | null;
  updatedAt: number;
  disabledAt: number | null;
}

export interface ClientPageProps extends ConsoleChrome {
  links: AppsLinks;
  base: string;
  notice: string | null;
  client: ClientDetail;
}

export function ClientPage(p: ClientPageProps) {
  const k = p.client;
  const action = (name: string) => `${p.base}/${name}`;
  return (
    <ConsolePage {...p} title={k.name} area="apps" notice={p.notice}>
      <AppsNav links={p.links} current="clients" />
      <a class="back" href={p.links.clients}>
        <span aria-hidden="true">← </span>All clients
      </a>
      <Section id="client" title="Client">
        <table aria-label="Client">
          <tbody>
            <tr>
              <th scope="row">Status</th>
              <td id="status">{k.disabledAt === null ? 'Enabled' : <DisabledSince at={k.disabledAt} />}</td>
            </tr>
            <tr>
              <th scope="row">Client id</th>
              <td class="wrap">
                <code>{k.id}</code>
              </td>
            </tr>
            <tr>
              <th scope="row">Kind</th>
              <td>
                {CLASS_NAMES[k.class]}
                {k.firstParty ? ', first-party (no consent page)' : ''}
              </td>
            </tr>
            <tr>
              <th scope="row">Registered</th>
              <td>
                <When at={k.createdAt} /> {k.source === 'dynamic' ? '(by itself, dynamic registration)' : '(by an admin)'}
              </td>
            </tr>
            <tr>
              <th scope="row">Grant types</th>
              <td>{k.grantTypes.join(', ')}</td>
            </tr>
            <tr>
              <th scope="row">Scopes</th>
              <td>{k.allowedScopes.length ? k.allowedScopes.join(', ') : <span class="muted">none</span>}</td>
            </tr>
            <tr>
              <th scope="row">Redirect URIs</th>
              <td>
                <List id="redirect-uris" items={k.redirectUris} empty="none" />
              </td>
            </tr>
            <tr>
              <th scope="row">After sign-out</th>
              <td>
                <List id="post-logout-uris" items={k.postLogoutRedirectUris} empty="none" />
              </td>
            </tr>
            <tr>
              <th scope="row">Audiences</th>
              <td>
                <List id="audiences" items={k.allowedAudiences} empty="none" />
              </td>
            </tr>
            <tr>
              <th scope="row">Back-channel logout</th>
              <td class="wrap" id="backchannel">
                {k.backchannelLogoutUri ?? <span class="muted">none</span>}
              </td>
            </tr>
          </tbody>
        </table>
      </Section>

      <Section id="secret" title="Authentication">
        <p id="auth-method">
          Authenticates with <strong>{k.authMethod}</strong>
          {k.keys !== null ? ` (${k.keys} public key${k.keys === 1 ? '' : 's'} registered)` : ''}.
        </p>
        {k.hasSecret && (
          <>
            <p id="rotation-state">
              {k.overlapEnd === null ? (
                'Only the current secret works: no rotation overlap is running.'
              ) : (
                <>
                  Rotated: the previous secret also works until <When at={k.overlapEnd} />.
                </>
              )}
            </p>
            <RotateForm action={action('rotate-secret')} id="rotate" what="secret" />
          </>
        )}
      </Section>

      <Section id="actions" title="Actions" danger>
        <div class="actions" id="client-actions">
          {k.disabledAt === null ? <ActionForm action={action('disable')} label="Disable" danger id="disable" /> : <ActionForm action={action('enable')} label="Enable" id="enable" />}
        </div>
      </Section>
    </ConsolePage>
  );
}

/** What the registration form holds (as typed), and what was wrong with it. */
export interface ClientFormValues {
  name: string;
  kind: 'confidential' | 'public';
  token_endpoint_auth_method: string;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string[];
  allowed_scopes: string[];
  allowed_audiences: string;
  backchannel_logout_uri: string;
  first_party: boolean;
  jwks: string;
}

export interface ClientFormProps extends ConsoleChrome {
  links: AppsLinks;
  action: string;
  values: ClientFormValues;
  /** Problems by form field (`name`, `redirect_uris`, ...); `form` for the rest. */
  problems: Record<string, string>;
  authMethods: readonly string[];
  grantTypes: readonly string[];
  scopes: readonly string[];
}

function TextArea(p: { id: string; name: string; label: string; value: string; hint?: string; error?: string; rows?: number }) {
  const described = [p.hint ? `${p.id}-hint` : null, p.error ? `${p.id}-error` : null].filter(Boolean).join(' ') || undefined;
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      <textarea id={p.id} name={p.name} rows={p.rows ?? 3} aria-invalid={p.error ? 'true' : undefined} aria-describedby={described}>
        {p.value}
      </textarea>
      {p.hint && (
        <p class="hint" id={`${p.id}-hint`}>
          {p.hint}
        </p>
      )}
      {p.error && (
        <p class="field-error" id={`${p.id}-error`}>
          {p.error}
        </p>
      )}
    </div>
  );
}

function Checks(p: { id: string; legend: string; prefix: string; options: readonly string[]; checked: string[]; error?: string }) {
  return (
    <fieldset id={p.id} aria-invalid={p.error ? 'true' : undefined} aria-describedby={p.error ? `${p.id}-error` : undefined}>
      <legend>{p.legend}</legend>
      {p.options.map((o) => (
        <div class="check">
          <input type="checkbox" id={`${p.id}-${o}`} name={`${p.prefix}${o}`} value="on" checked={p.checked.includes(o)} />
          <label for={`${p.id}-${o}`}>{o}</label>
        </div>
      ))}
      {p.error && (
        <p class="field-error" id={`${p.id}-error`}>
          {p.error}
        </p>
      )}
    </fieldset>
  );
}

function Select(p: { id: string; name: string; label: string; options: readonly { value: string; label: string }[]; value: string; error?: string }) {
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      <select id={p.id} name={p.name} aria-invalid={p.error ? 'true' : undefined} aria-describedby={p.error ? `${p.id}-error` : undefined}>
        {p.options.map((o) => (
          <option value={o.value} selected={o.value === p.value}>
            {o.label}
          </option>
        ))}
      </select>
      {p.error && (
        <p class="field-error" id={`${p.id}-error`}>
          {p.error}
        </p>
      )}
    </div>
  );
}

export function ClientFormPage(p: ClientFormProps) {
  const v = p.values;
  const e = p.problems;
  const count = Object.keys(e).length;
  return (
    <ConsolePage {...p} title="Register a client" area="apps">
      <AppsNav links={p.links} current="clients" />
      <a class="back" href={p.links.clients}>
        <span aria-hidden="true">← </span>All clients
      </a>
      <section class="card" aria-labelledby="register-heading">
        <h2 id="register-heading">The client</h2>
        {count > 0 && (
          <div class="error" role="alert" id="form-error">
            {count === 1 ? 'One field needs a change' : `${count} fields need a change`}; nothing was registered.{e.form ? ` ${e.form}` : ''}
          </div>
        )}
        <form method="post" action={p.action} id="register">
          <Field id="client-name" name="name" label="Name" value={v.name} maxlength={100} error={e.name} hint="Shown to people on the consent page." />
          <Select
            id="client-kind"
            name="kind"
            label="Kind"
            value={v.kind}
            error={e.kind}
            options={[
              { value: 'confidential', label: 'Confidential (a server)' },
              { value: 'public', label: 'Public (no secret)' },
            ]}
          />
          <Select
            id="client-method"
            name="token_endpoint_auth_method"
            label="Authenticates with"
            value={v.token_endpoint_auth_method}
            error={e.token_endpoint_auth_method}
            options={p.authMethods.map((m) => ({ value: m, label: m === 'none' ? 'none (public clients)' : m }))}
          />
          <Checks id="client-grants" legend="Grant types" prefix="grant_" options={p.grantTypes} checked={v.grant_types} error={e.grant_types} />
          <TextArea id="client-redirects" name="redirect_uris" label="Redirect URIs" value={v.redirect_uris} error={e.redirect_uris} hint="One a line; compared exactly." />
          <TextArea id="client-post-logout" name="post_logout_redirect_uris" label="Redirect URIs after sign-out" value={v.post_logout_redirect_uris} error={e.post_logout_redirect_uris} hint="One a line (optional)." />
          <Checks id="client-scopes" legend="Scopes it may ask for" prefix="scope_" options={p.scopes} checked={v.allowed_scopes} error={e.allowed_scopes} />
          <TextArea id="client-audiences" name="allowed_audiences" label="Audiences (resources its tokens may be for)" value={v.allowed_audiences} error={e.allowed_audiences} hint="One URL a line (optional)." />
          <Field
            id="client-backchannel"
            name="backchannel_logout_uri"
            label="Back-channel logout URI"
            type="url"
            required={false}
            value={v.backchannel_logout_uri}
            error={e.backchannel_logout_uri}
            hint="Optional: https URL told when a session ends."
          />
          <TextArea id="client-jwks" name="jwks" label="Public keys (JWK Set, JSON)" value={v.jwks} error={e.jwks} hint="Only for private_key_jwt." rows={4} />
          <div class="check">
            <input type="checkbox" id="client-first-party" name="first_party" value="on" checked={v.first_party} aria-describedby={e.first_party ? 'client-first-party-error' : undefined} />
            <label for="client-first-party">First-party: an app of your own (no consent page)</label>
          </div>
          {e.first_party && (
            <p class="field-error" id="client-first-party-error">
              {e.first_party}
            </p>
          )}
          <button type="submit" class="button primary">
            Register
          </button>
        </form>
      </section>
    </ConsolePage>
  );
}

/**
 * The one page that shows a new secret (a client's, a SCIM token's): answered directly by the
 * confirmed post, never cached, never in a URL; once left, it cannot be shown again.
 */
export interface SecretShownProps extends ConsoleChrome {
  links: AppsLinks;
  current: 'clients' | 'scim-tokens';
  title: string;
  /** "Its client secret", "The bearer token". */
  label: string;
  secret: string;
  /** The client's id, shown beside its secret. */
  clientId?: string;
  note?: string;
  /** After a rotation: the previous one, and when it stops (null: it already has). */
  previous?: { what: 'secret' | 'token'; until: number | null };
  next: { href: string; label: string };
}

export function SecretShownPage(p: SecretShownProps) {
  return (
    <ConsolePage {...p} title={p.title} area="apps">
      <AppsNav links={p.links} current={p.current} />
      <section class="card" id="secret-shown" aria-labelledby="secret-heading">
        <h2 id="secret-heading">{p.label}</h2>
        <p>
          <strong>Copy it now: it is shown only this once.</strong> The gateway keeps only its hash and cannot show it again.
        </p>
        <p class="secret" id="new-secret">
          <code>{p.secret}</code>
        </p>
        <ul>
          {p.clientId && (
            <li>
              Client id: <code class="wrap">{p.clientId}</code>
            </li>
          )}
          {p.previous && (
            <li id="previous-state">
              {p.previous.until === null ? (
                `The previous ${p.previous.what} no longer works.`
              ) : (
                <>
                  The previous {p.previous.what} works until <When at={p.previous.until} />.
                </>
              )}
            </li>
          )}
          {p.note && <li>{p.note}</li>}
        </ul>
        <a href={p.next.href} class="button secondary" id="secret-done">
          {p.next.label}
        </a>
      </section>
    </ConsolePage>
  );
}

// ---- SCIM tokens ----

export interface ScimTokenRow {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  disabled: boolean;
  overlapEnd: number | null;
}

export interface ScimTokenListProps extends ConsoleChrome {
  links: AppsLinks;
  notice: string | null;
  base: string;
  tokens: ScimTokenRow[];
  /** SCIM_TOKEN is set too (a secret, not listed here). */
  secretSet: boolean;
}

export function ScimTokenListPage(p: ScimTokenListProps) {
  return (
    <ConsolePage {...p} title="SCIM tokens" area="apps" notice={p.notice}>
      <AppsNav links={p.links} current="scim-tokens" />
      <Section id="tokens-section" title="Tokens of the directory">
        <p class="muted">A directory (Okta, Entra) provisions users with one of these at the SCIM endpoint.{p.secretSet ? ' The SCIM_TOKEN secret works beside them.' : ''}</p>
        {p.tokens.length === 0 ? (
          <p class="muted" id="no-tokens">
            No tokens.
          </p>
        ) : (
          <table id="scim-tokens" class="stack">
            <thead>
              <tr>
                <th scope="col">Token</th>
                <th scope="col">Last used</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {p.tokens.map((t) => (
                <tr data-token={t.id}>
                  <td>
                    <a href={`${p.base}/${encodeURIComponent(t.id)}`} class="wrap">
                      {t.name}
                    </a>
                    <div class="muted wrap">{t.id}</div>
                    {t.disabled && <Tag tone="warn">disabled</Tag>}
                    {t.overlapEnd !== null && <Tag>rotating</Tag>}
                  </td>
                  <td data-label="Last used">{t.lastUsedAt === null ? <span class="muted">never</span> : <When at={t.lastUsedAt} />}</td>
                  <td data-label="Created">
                    <When at={t.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section id="create-token" title="Create a token">
        <form method="post" action={`${p.base}/new`} id="create-scim-token">
          <Field id="token-name" name="name" label="Name" maxlength={100} hint="Which directory it is for, e.g. “Okta production”." />
          <button type="submit" class="button secondary">
            Create
          </button>
        </form>
      </Section>
    </ConsolePage>
  );
}

export interface ScimTokenPageProps extends ConsoleChrome {
  links: AppsLinks;
  base: string;
  notice: string | null;
  token: ScimTokenRow & { createdBy: string | null; disabledAt: number | null };
}

export function ScimTokenPage(p: ScimTokenPageProps) {
  const t = p.token;
  const action = (name: string) => `${p.base}/${name}`;
  return (
    <ConsolePage {...p} title={t.name} area="apps" notice={p.notice}>
      <AppsNav links={p.links} current="scim-tokens" />
      <a class="back" href={p.links.scimTokens}>
        <span aria-hidden="true">← </span>All SCIM tokens
      </a>
      <Section id="token" title="SCIM token">
        <table aria-label="SCIM token">
          <tbody>
            <tr>
              <th scope="row">Status</th>
              <td id="status">{t.disabledAt === null ? 'Enabled' : <DisabledSince at={t.disabledAt} />}</td>
            </tr>
            <tr>
              <th scope="row">Id</th>
              <td class="wrap">
                <code>{t.id}</code>
              </td>
            </tr>
            <tr>
              <th scope="row">Created</th>
              <td>
                <When at={t.createdAt} />
              </td>
            </tr>
            <tr>
              <th scope="row">Last used</th>
              <td>{t.lastUsedAt === null ? <span class="muted">never</span> : <When at={t.lastUsedAt} />}</td>
            </tr>
            <tr>
              <th scope="row">Rotation</th>
              <td id="rotation-state">
                {t.overlapEnd === null ? (
                  'Only the current token works: no rotation overlap is running.'
                ) : (
                  <>
                    The previous token also works until <When at={t.overlapEnd} />.
                  </>
                )}
              </td>
            </tr>
          </tbody>
        </table>
        <RotateForm action={action('rotate')} id="rotate" what="token" />
      </Section>
      <Section id="actions" title="Actions" danger>
        <div class="actions" id="token-actions">
          {t.disabledAt === null ? <ActionForm action={action('disable')} label="Disable" danger id="disable" /> : <ActionForm action={action('enable')} label="Enable" id="enable" />}
          <ActionForm action={action('delete')} label="Delete" danger id="delete" />
        </div>
      </Section>
    </ConsolePage>
  );
}

// ---- Consents ----

export interface ConsentRowView {
  clientId: string;
  name: string;
  registered: boolean;
  scopes: string[];
  resources: string[];
  grantedAt: number;
}

export interface ConsentsPageProps extends ConsoleChrome {
  links: AppsLinks;
  notice: string | null;
  /** The lookup form's action and the address typed. */
  base: string;
  email: string;
  /** The address typed matches no user. */
  unknown: boolean;
  /** The user looked at, with their consents; null before a lookup. */
  user: { id: string; email: string; consents: ConsentRowView[]; revokeBase: string; userPage: string } | null;
}

export function ConsentsPage(p: ConsentsPageProps) {
  const u = p.user;
  return (
    <ConsolePage {...p} title={u ? `Consent grants of ${u.email}` : 'Consent grants'} area="apps" notice={p.notice}>
      <AppsNav links={p.links} current="consents" />
      <Section id="find-consents" title="Find a user’s consents">
        <p class="muted">Each user’s consents are kept with their sessions: look them up by address.</p>
        <form method="get" action={p.base} role="search" class="search-row">
          <Field id="consent-email" name="email" label="Email" type="email" value={p.email} maxlength={254} autocomplete="off" error={p.unknown ? 'No user has this address.' : null} />
          <button type="submit" class="button primary">
            Show consents
          </button>
        </form>
      </Section>
      {u && (
        <Section id="consents-section" title="Apps this user allowed">
          <p>
            <a href={u.userPage} class="wrap">
              {u.email}
            </a>
          </p>
          {u.consents.length === 0 ? (
            <p class="muted" id="no-consents">
              No consents: this user has allowed no app.
            </p>
          ) : (
            <table id="consents" class="stack">
              <thead>
                <tr>
                  <th scope="col">App</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Allowed</th>
                  <th scope="col">
                    <span class="muted">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {u.consents.map((k) => (
                  <tr data-consent={k.clientId}>
                    <td>
                      <span class="wrap">{k.name}</span>
                      {!k.registered && <Tag tone="warn">no longer registered</Tag>}
                      <div class="muted wrap">{k.clientId}</div>
                    </td>
                    <td data-label="Scopes">
                      {k.scopes.length ? k.scopes.join(', ') : <span class="muted">none</span>}
                      {k.resources.length > 0 && <div class="muted wrap">for {k.resources.join(', ')}</div>}
                    </td>
                    <td data-label="Allowed">
                      <When at={k.grantedAt} />
                    </td>
                    <td>
                      <ActionForm action={`${u.revokeBase}/${encodeURIComponent(k.clientId)}/revoke`} label="Revoke" danger />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
      )}
    </ConsolePage>
  );
}
