/**
 * The consent page of the authorization endpoint (README "Apps (OpenID Connect)"): which app
 * asks, what for in plain words (each scope, and the resource if any), as which account, and
 * two buttons, Allow and Deny, in one form that posts back to the endpoint with the request and
 * the form's token (auth/oauth-authorize.ts). Works without JavaScript.
 */
import { raw } from 'hono/html';
import { Card, Page, PostForm, SecondaryButton, PrimaryButton, type Brand } from './components';

/** What each scope lets the app do, in words; a scope not listed here is shown by its name. */
const SCOPE_WORDS: Record<string, string> = {
  openid: 'Know who you are when you sign in to it',
  profile: 'See your name and profile picture',
  email: 'See your email address',
  offline_access: 'Stay connected while you are away, until you sign out or take its access away',
};

export function scopeWords(scope: string): string {
  return Object.hasOwn(SCOPE_WORDS, scope) ? SCOPE_WORDS[scope]! : `Use the permission “${scope}”`;
}

export interface ConsentPageProps {
  nonce?: string;
  brand: Brand;
  action: string;
  appName: string;
  /** The host the app will be sent back to (the redirect URI's), so the user sees where the answer goes. */
  appHost: string;
  /**
   * Who stands behind the name: `admin` (registered by this gateway's admins), `self` (the app
   * registered itself), or the host serving its client ID metadata document.
   */
  vouchedBy: { kind: 'admin' } | { kind: 'self' } | { kind: 'document'; host: string };
  account: string;
  scopes: string[];
  resource: string | null;
  /** The canonical request and the form's token: sent back as they are. */
  request: string;
  token: string;
}

export function ConsentPage(p: ConsentPageProps) {
  return (
    <Page title={`Allow ${p.appName}?`} nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1 id="consent-heading">Allow {p.appName} to use your account?</h1>
        <p class="lede" id="consent-account">
          Signed in as <strong>{p.account}</strong>
        </p>
        <p>
          <strong id="consent-app">{p.appName}</strong> <span class="muted">({p.appHost})</span> asks to:
        </p>
        {p.vouchedBy.kind === 'document' && (
          <p id="consent-vouched">
            Described by <strong>{p.vouchedBy.host}</strong>
          </p>
        )}
        {p.vouchedBy.kind !== 'admin' && (
          <p class="error" role="note" id="consent-unverified">
            This app registered itself: this sign-in service has not checked who made it, and its name is its own claim. Allow it only if
            you started this from an app you trust.
          </p>
        )}
        <ul id="consent-scopes">
          {p.scopes.length === 0 && !p.resource && <li>Know that you signed in</li>}
          {p.scopes.map((s) => (
            <li data-scope={s}>{scopeWords(s)}</li>
          ))}
          {p.resource && (
            <li data-resource={p.resource}>
              Act for you at <code>{p.resource}</code>
            </li>
          )}
        </ul>
        <p class="muted">You can take this access away at any time on your account page.</p>
        <PostForm action={p.action} label="Your answer">
          <input type="hidden" name="request" value={p.request} />
          <input type="hidden" name="consent_token" value={p.token} />
          <PrimaryButton name="decision" value="allow">
            Allow
          </PrimaryButton>
          <SecondaryButton name="decision" value="deny">
            Deny
          </SecondaryButton>
        </PostForm>
      </Card>
    </Page>
  );
}

/**
 * "Returning to the app": the answer to a request the browser reached from one of our own pages
 * (after signing in, stepping up or a second factor). Browsers apply the submitting page's CSP
 * `form-action` to every redirect after a form post, and that page could not name the app's
 * redirect URI, so a 303 there would be blocked: this page goes on by script (nonce'd, which no
 * `form-action` governs), with a link for a browser without scripts.
 */
export function ContinuePage(p: { nonce?: string; brand: Brand; appName: string; href: string }) {
  // JSON in a script: `<` escaped so the URL cannot close the element.
  const target = JSON.stringify(p.href).replace(/</g, '\\u003c');
  return (
    <Page title={`Back to ${p.appName}`} nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Returning to {p.appName}…</h1>
        <p>
          <a class="button primary" id="continue" href={p.href}>
            Continue to {p.appName}
          </a>
        </p>
      </Card>
      <script nonce={p.nonce}>{raw(`location.replace(${target});`)}</script>
    </Page>
  );
}
