/**
 * `GET /auth/account`: the signed-in user's profile, linked sign-in providers, and sessions
 * with device, place and last use (a session started from a country the user has never been to
 * is theirs to spot and end). Every action is a plain HTML form (POST), so the page works
 * without JavaScript.
 */
import { ErrorBox, Layout } from './layout';
import { BackToApp, Notice, type Brand } from './components';
import { PasskeysSection, type PasskeysSectionProps } from './passkeys-section';
import { SecondFactorsCard, type SecondFactorsCardProps } from './second-factors-card';
import { DeleteSection, EmailSection, ManageSignInMethods, PasswordSection, type AccountSecurityProps } from './account-security';
import type { Child } from 'hono/jsx';
import { scopeWords } from './consent-page';

export interface AccountSession {
  id: string;
  device: string;
  ip: string | null;
  /** Where it was started, for people (ui/place-label.ts): "Germany (DE)", "Unknown". */
  place: string;
  createdAt: number;
  lastUsedAt: number;
  current: boolean;
  provider: string | null;
}

export interface AccountPageProps {
  prefix: string;
  nonce?: string;
  brand?: Brand;
  /** Where "Back to the app" goes: a checked `return_to`, or `/`. */
  backHref?: string;
  notice?: string | null;
  error?: string | null;
  user: { email: string; emailVerified: boolean; name: string | null; roles: string[]; createdAt: number; hasPassword: boolean };
  providers: { name: string; email: string | null; linkedAt: number }[];
  sessions: AccountSession[];
  passkeys?: PasskeysSectionProps;
  secondFactors?: SecondFactorsCardProps;
  /** Self-service: sign-in methods, password, email, deletion (ui/account-security.tsx). */
  security?: AccountSecurityProps;
  /** Apps the user allowed to use the account (OpenID Connect consents). */
  apps?: AccountApp[];
}

export interface AccountApp {
  clientId: string;
  name: string;
  scopes: string[];
  grantedAt: number;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
/** "2026-11-23 22:04 UTC": readable without a script, and unambiguous. */
const readable = (seconds: number) => `${iso(seconds).slice(0, 16).replace('T', ' ')} UTC`;

function When(props: { at: number }) {
  return <time datetime={iso(props.at)}>{readable(props.at)}</time>;
}

/** One section of the account page: a card with its heading, reachable from the page's contents. */
function Section(p: { id: string; title: string; lede?: string; danger?: boolean; children: Child }) {
  return (
    <section class={p.danger ? 'card danger-zone' : 'card'} id={p.id} aria-labelledby={`${p.id}-heading`}>
      <h2 id={`${p.id}-heading`}>{p.title}</h2>
      {p.lede && <p class="muted">{p.lede}</p>}
      {p.children}
    </section>
  );
}

const SECTIONS = [
  ['profile', 'Profile'],
  ['security', 'Sign-in & security'],
  ['sessions-section', 'Sessions'],
  ['apps', 'Apps'],
  ['danger-zone', 'Danger zone'],
] as const;

/**
 * Five sections, each with at most one primary action: Profile (change the address), Sign-in &
 * security (password, passkeys, authenticator app, linked sign-in methods), Sessions, Apps, and the
 * Danger zone last (sign out everywhere, delete the account), whose buttons are marked as such.
 */
export function AccountPage(p: AccountPageProps) {
  const changePassword = p.security?.hasPassword === true;
  return (
    <Layout title="Your account" nonce={p.nonce} brand={p.brand} wide>
      <BackToApp href={p.backHref ?? '/'} appName={p.brand?.name} />
      <div class="account-head">
        <h1>Your account</h1>
        <p class="lede" id="signed-in-as">
          Signed in as <strong>{p.user.email}</strong>
        </p>
        <nav class="toc" aria-label="Sections">
          {SECTIONS.map(([id, title]) => (
            <a href={`#${id}`}>{title}</a>
          ))}
        </nav>
      </div>
      <ErrorBox message={p.error} />
      <Notice message={p.notice} />

      <Section id="profile" title="Profile">
        <table aria-label="Profile">
          <tbody>
            <tr>
              <th scope="row">Email</th>
              <td id="profile-email">
                {p.user.email} {p.user.emailVerified ? '(verified)' : '(not verified)'}
              </td>
            </tr>
            {p.user.name && (
              <tr>
                <th scope="row">Name</th>
                <td>{p.user.name}</td>
              </tr>
            )}
            <tr>
              <th scope="row">Roles</th>
              <td>{p.user.roles.length ? p.user.roles.join(', ') : 'none'}</td>
            </tr>
            <tr>
              <th scope="row">Member since</th>
              <td>
                <When at={p.user.createdAt} />
              </td>
            </tr>
          </tbody>
        </table>
        {p.security && <EmailSection {...p.security} />}
      </Section>

      <Section id="security" title="Sign-in & security">
        {p.security && <PasswordSection {...p.security} />}
        {p.passkeys && <PasskeysSection {...p.passkeys} nonce={p.nonce} />}
        {p.secondFactors && <SecondFactorsCard {...p.secondFactors} primary={!changePassword} />}
        <div class="sub" id="sign-in-methods">
          <h3>Linked sign-in methods</h3>
          <ul id="providers">
            {p.user.hasPassword && <li>Email and password</li>}
            {p.providers.map((provider) => (
              <li data-provider={provider.name}>
                {provider.name}
                {provider.email ? ` (${provider.email})` : ''}, linked <When at={provider.linkedAt} />
              </li>
            ))}
            {!p.user.hasPassword && p.providers.length === 0 && <li>None</li>}
          </ul>
          {p.security && <ManageSignInMethods {...p.security} />}
        </div>
      </Section>

      <Section id="sessions-section" title="Sessions" lede="The browsers and devices signed in to your account.">
        <table id="sessions">
          <thead>
            <tr>
              <th scope="col">Device and place</th>
              <th scope="col">Last used</th>
              <th scope="col">Signed in</th>
              <th scope="col">
                <span class="muted">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {p.sessions.map((s) => (
              <tr data-session={s.id}>
                <td>
                  {s.device}
                  {s.current && <strong> (this device)</strong>}
                  <div class="place">{s.place}</div>
                  {s.ip && <div class="muted">{s.ip}</div>}
                </td>
                <td data-label="Last used">
                  <When at={s.lastUsedAt} />
                </td>
                <td data-label="Signed in">
                  <When at={s.createdAt} />
                  {s.provider && <div class="muted">with {s.provider}</div>}
                </td>
                <td>
                  <form method="post" action={`${p.prefix}/account/sessions/${encodeURIComponent(s.id)}/end`}>
                    <button type="submit" class="secondary" aria-label={`Sign out ${s.current ? 'this device' : s.device}`}>
                      Sign out
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>

      <Section id="apps" title="Apps" lede="Apps you allowed to use your account. Taking access away signs the app out of your account.">
        {(p.apps ?? []).length === 0 ? (
          <p class="muted" id="no-apps">
            No apps.
          </p>
        ) : (
          <table id="apps-table">
            <thead>
              <tr>
                <th scope="col">App</th>
                <th scope="col">Allowed</th>
                <th scope="col">Since</th>
                <th scope="col">
                  <span class="muted">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(p.apps ?? []).map((a) => (
                <tr data-app={a.clientId}>
                  <td>{a.name}</td>
                  <td data-label="Allowed">
                    <ul class="plain">
                      {a.scopes.length === 0 ? <li>Sign-in only</li> : a.scopes.map((s) => <li>{scopeWords(s)}</li>)}
                    </ul>
                  </td>
                  <td data-label="Since">
                    <When at={a.grantedAt} />
                  </td>
                  <td>
                    <form method="post" action={`${p.prefix}/account/apps/${encodeURIComponent(a.clientId)}/revoke`}>
                      <button type="submit" class="secondary" aria-label={`Revoke ${a.name}`}>
                        Revoke
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section id="danger-zone" title="Danger zone" danger>
        <div class="sub" id="sign-out-everywhere">
          <h3>Sign out everywhere</h3>
          <p class="muted">Ends every session above, this one included.</p>
          <form method="post" action={`${p.prefix}/account/logout-all`}>
            <button type="submit" class="button danger">
              Sign out everywhere
            </button>
          </form>
        </div>
        {p.security && <DeleteSection {...p.security} />}
      </Section>
    </Layout>
  );
}
