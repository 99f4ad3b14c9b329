/**
 * The pages of second factors: setting up an authenticator app, recovery codes (shown once),
 * entering a code to finish signing in, stepping up, and a plain message page. No script: plain
 * forms, the CSP of ui/render.ts.
 */
import { raw } from 'hono/html';
import type { Brand } from './components';
import { ErrorBox, Layout } from './layout';
import { PasskeyFactor } from './passkeys-section';

/** Sizes the QR code and the typed key; in the page's own nonce-tagged stylesheet (the codes list is in ui/styles.ts: the passkey script shows one on the account page too). */
const EXTRA = `.qr{background:#fff;padding:.5rem;border-radius:.5rem;width:15rem;max-width:100%;margin:0 auto 1rem}.qr svg{display:block;width:100%;height:auto}
code{font:600 1rem/1.6 ui-monospace,monospace;letter-spacing:.05em;overflow-wrap:anywhere}`;

function Extra(p: { nonce?: string }) {
  return <style nonce={p.nonce}>{EXTRA}</style>;
}

export interface TotpEnrolPageProps {
  nonce?: string;
  appName: string;
  /** SVG markup from ui/qr-svg.ts (our own rendering, no user text). */
  qr: string;
  secret: string;
  action: string;
  error?: string | null;
  /** Shown above the steps, e.g. why setting one up is required now. */
  intro?: string | null;
  cancelHref?: string | null;
  brand?: Brand;
}

export function TotpEnrolPage(p: TotpEnrolPageProps) {
  const grouped = p.secret.match(/.{1,4}/g)?.join(' ') ?? p.secret;
  return (
    <Layout title="Set up an authenticator app" nonce={p.nonce} brand={p.brand}>
      <Extra nonce={p.nonce} />
      <div class="card">
        <h1>Set up an authenticator app</h1>
        {p.intro && <p role="status">{p.intro}</p>}
        <ErrorBox message={p.error} />
        <p>1. Scan this code with an authenticator app (such as Google Authenticator, 1Password or Aegis).</p>
        <div class="qr" role="img" aria-label={`QR code to add ${p.appName} to an authenticator app`}>
          {raw(p.qr)}
        </div>
        <p>
          Or enter this key by hand: <code id="totp-secret">{grouped}</code>
        </p>
        <form method="post" action={p.action}>
          <label for="totp-code">2. Enter the 6-digit code the app shows</label>
          <input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength={7} required aria-describedby={p.error ? 'form-error' : undefined} />
          <button type="submit">Turn on</button>
        </form>
        {p.cancelHref && (
          <p class="muted">
            <a href={p.cancelHref}>Cancel</a>
          </p>
        )}
      </div>
    </Layout>
  );
}

export interface RecoveryCodesPageProps {
  nonce?: string;
  brand?: Brand;
  intro: string;
  codes: string[];
  continueHref: string;
  continueLabel: string;
}

/** Shows the copy button (hidden without JavaScript, where the codes are plain selectable text). */
const COPY_SCRIPT = `document.querySelectorAll("button[data-copy]").forEach(function(b){var t=document.getElementById(b.getAttribute("data-copy"));if(!t||!navigator.clipboard)return;b.hidden=false;b.addEventListener("click",function(){navigator.clipboard.writeText(t.innerText).then(function(){b.textContent="Copied"},function(){b.textContent="Select the codes to copy them"})})});`;

/**
 * "Continue" as a GET form to `href` (its query as hidden fields, since a GET form replaces the
 * action's query), so that the browser itself insists on the unnamed, required checkbox: the
 * codes are shown only now, and going on must mean they were kept. Nothing is posted.
 */
function AcknowledgedContinue(p: { href: string; label: string }) {
  const url = new URL(p.href, 'https://gateway.invalid');
  const action = /^https?:\/\//i.test(p.href) ? `${url.origin}${url.pathname}` : url.pathname;
  return (
    <form method="get" action={action} id="codes-continue">
      {[...url.searchParams].map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <div class="check">
        <input type="checkbox" id="codes-saved" required />
        <label for="codes-saved">I have saved these codes somewhere safe</label>
      </div>
      <button type="submit" class="button primary">
        {p.label}
      </button>
    </form>
  );
}

export function RecoveryCodesPage(p: RecoveryCodesPageProps) {
  const name = p.brand?.name ?? 'Gatehouse';
  const file = `${name} recovery codes\nEach code works once, in place of a code from your authenticator app or passkey.\n\n${p.codes.join('\n')}\n`;
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'gatehouse';
  return (
    <Layout title="Your recovery codes" nonce={p.nonce} brand={p.brand}>
      <Extra nonce={p.nonce} />
      <div class="card">
        <h1>Your recovery codes</h1>
        <p class="banner" role="status">
          {p.intro}
        </p>
        <p>
          If you lose your authenticator app or passkey, each of these codes signs you in once. They are shown <strong>only now</strong>: save them
          in a password manager or print them.
        </p>
        <ol class="codes" id="recovery-codes">
          {p.codes.map((code) => (
            <li>{code}</li>
          ))}
        </ol>
        <div class="actions">
          <button type="button" class="button secondary" hidden data-copy="recovery-codes">
            Copy codes
          </button>
          <a class="button secondary" id="codes-download" download={`${slug}-recovery-codes.txt`} href={`data:text/plain;charset=utf-8,${encodeURIComponent(file)}`}>
            Download
          </a>
        </div>
        <AcknowledgedContinue href={p.continueHref} label={p.continueLabel} />
      </div>
      <script nonce={p.nonce}>{raw(COPY_SCRIPT)}</script>
    </Layout>
  );
}

export interface CodeFormProps {
  nonce?: string;
  title: string;
  intro: string;
  action: string;
  error?: string | null;
  /** Hidden fields to post back (e.g. return_to). */
  hidden?: Record<string, string>;
  /** Ask for the password too (step-up of a sign-in that is not recent). */
  password?: boolean;
  /** Ask for a code (the user has a second factor). */
  code?: boolean;
  submitLabel: string;
  /** Links below the form, e.g. back to sign-in. */
  links?: { href: string; label: string }[];
  /** Offer "Use your passkey" (the user has one): its endpoints and where success leads. */
  passkey?: { prefix: string; options: string; verify: string; returnTo: string };
  /** The signed-in account the page confirms (step-up): named under the heading. */
  account?: string;
  /** A way out without answering (step-up): "Cancel". */
  cancelHref?: string;
  brand?: Brand;
}

export function CodeFormPage(p: CodeFormProps) {
  return (
    <Layout title={p.title} nonce={p.nonce} brand={p.brand}>
      <div class="card">
        <h1>{p.title}</h1>
        {p.account && (
          <p id="account-name">
            Signed in as <strong>{p.account}</strong>
          </p>
        )}
        <p>{p.intro}</p>
        <ErrorBox message={p.error} />
        {p.passkey && <PasskeyFactor {...p.passkey} nonce={p.nonce} />}
        <form method="post" action={p.action}>
          {Object.entries(p.hidden ?? {}).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          {p.password && (
            <>
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" required />
            </>
          )}
          {p.code && (
            <>
              <label for="code">Code from your authenticator app, or a recovery code</label>
              <input id="code" name="code" autocomplete="one-time-code" maxlength={24} required autofocus aria-describedby={p.error ? 'form-error' : undefined} />
            </>
          )}
          <button type="submit" class="button primary">
            {p.submitLabel}
          </button>
        </form>
        {p.cancelHref && (
          <a class="button secondary" href={p.cancelHref} id="cancel">
            Cancel
          </a>
        )}
        {(p.links ?? []).map((l) => (
          <p class="muted">
            <a href={l.href}>{l.label}</a>
          </p>
        ))}
      </div>
    </Layout>
  );
}

export function MessagePage(p: { nonce?: string; brand?: Brand; title: string; message: string; href: string; label: string; error?: boolean }) {
  return (
    <Layout title={p.title} nonce={p.nonce} brand={p.brand}>
      <div class="card">
        <h1>{p.title}</h1>
        <p role={p.error ? 'alert' : 'status'} class={p.error ? 'error' : undefined}>
          {p.message}
        </p>
        <a class="button" href={p.href}>
          {p.label}
        </a>
      </div>
    </Layout>
  );
}
