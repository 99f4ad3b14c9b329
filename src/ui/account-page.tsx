/**
 * `GET /auth/account`: the signed-in user's profile, linked sign-in providers, and sessions
 * with device and last use. Every action is a plain HTML form (POST), so the page works
 * without JavaScript.
 */
import { ErrorBox, Layout } from './layout';
import { BackToApp, Notice, type Brand } from './components';
import { PasskeysSection, type PasskeysSectionProps } from './passkeys-section';
import { SecondFactorsCard, type SecondFactorsCardProps } from './second-factors-card';
import { AccountSecuritySections, ManageSignInMethods, type AccountSecurityProps } from './account-security';

export interface AccountSession {
  id: string;
  device: string;
  ip: string | null;
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
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
/** "2026-11-23 22:04 UTC": readable without a script, and unambiguous. */
const readable = (seconds: number) => `${iso(seconds).slice(0, 16).replace('T', ' ')} UTC`;

function When(props: { at: number }) {
  return <time datetime={iso(props.at)}>{readable(props.at)}</time>;
}

export function AccountPage(p: AccountPageProps) {
  return (
    <Layout title="Your account" nonce={p.nonce} brand={p.brand} wide>
      <BackToApp href={p.backHref ?? '/'} appName={p.brand?.name} />
      <div class="card">
        <h1>Your account</h1>
        <ErrorBox message={p.error} />
        <Notice message={p.notice} />
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
      </div>

      <div class="card">
        <h2>Sign-in methods</h2>
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
      {p.security && <AccountSecuritySections {...p.security} />}

      {p.passkeys && <PasskeysSection {...p.passkeys} nonce={p.nonce} />}
      {p.secondFactors && <SecondFactorsCard {...p.secondFactors} />}

      <div class="card">
        <h2>Sessions</h2>
        <table id="sessions">
          <thead>
            <tr>
              <th scope="col">Device</th>
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
        <form method="post" action={`${p.prefix}/account/logout-all`}>
          <button type="submit">Sign out everywhere</button>
        </form>
      </div>
    </Layout>
  );
}
