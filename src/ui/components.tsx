/**
 * The UI kit of Gatehouse's pages: one page shell and the few pieces every form page is made
 * of. Server-rendered hono/jsx; every page works without JavaScript (the one script, the
 * show-password toggle, only adds a button), styles and script run under the page's CSP nonce
 * (ui/render.ts), and the colours meet WCAG AA in the light and dark schemes (ui/styles.ts).
 *
 * A page is rendered through `renderPage(c, (nonce, brand) => ...)`, which hands it the nonce
 * and the app's identity; pass both to {@link Page}.
 *
 * @example
 * renderPage(c, (nonce, brand) => (
 *   <Page title="Reset your password" nonce={nonce} brand={brand}>
 *     <Card>
 *       <h1>Reset your password</h1>
 *       <ErrorBox message={error} />
 *       <PostForm action={`${prefix}/password/reset`}>
 *         <PasswordField id="reset-password" name="password" label="New password" autocomplete="new-password" hint="At least 12 characters." />
 *         <PrimaryButton>Set new password</PrimaryButton>
 *       </PostForm>
 *     </Card>
 *   </Page>
 * ));
 */
import type { Child } from 'hono/jsx';
import { raw } from 'hono/html';
import { STYLES, accentStyles } from './styles';

/** Who the pages speak for: `APP_NAME`, and `APP_LOGO_URL` / `APP_ACCENT` when set. */
export interface Brand {
  name: string;
  /** An https URL or a same-origin path; the page CSP allows exactly its origin. */
  logoUrl?: string;
  /** `#rrggbb`, already validated by config. */
  accent?: string;
}

/**
 * The show-password toggle. Without JavaScript the button stays `hidden` and the field is a
 * plain password input; with it, the button appears and switches the input between `password`
 * and `text` (`aria-pressed` tells assistive tech the state). The field is masked again on
 * submit, so the browser never sees a plain-text password field being submitted.
 */
const REVEAL_SCRIPT = `document.querySelectorAll("button[data-reveal]").forEach(function(b){var i=document.getElementById(b.getAttribute("data-reveal"));if(!i)return;b.hidden=false;b.addEventListener("click",function(){var show=i.type==="password";i.type=show?"text":"password";b.setAttribute("aria-pressed",String(show));b.textContent=show?"Hide":"Show";});if(i.form)i.form.addEventListener("submit",function(){i.type="password";b.setAttribute("aria-pressed","false");b.textContent="Show";});});`;

export interface PageProps {
  /** The page's own title; the browser tab reads "Title · App name". */
  title: string;
  nonce?: string;
  brand: Brand;
  /** A wider column for tables (the account page). */
  wide?: boolean;
  children: Child;
}

/**
 * The page shell: document head (viewport, no referrer, the nonce'd stylesheet with the app's
 * accent), a header with the app's logo and name, one `main` column, and the show-password
 * script. Put exactly one `h1` in the children.
 *
 * @example
 * <Page title="Sign in" nonce={nonce} brand={brand}><Card><h1>Sign in</h1>...</Card></Page>
 */
export function Page(p: PageProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{p.title === p.brand.name ? p.title : `${p.title} · ${p.brand.name}`}</title>
        {/* Our own constants plus a validated #rrggbb: nothing here comes from a request. */}
        <style nonce={p.nonce}>{raw(STYLES + accentStyles(p.brand.accent))}</style>
      </head>
      <body>
        <div class="shell">
          <header class="brand">
            {/* The name is written next to the logo, so the image itself says nothing more. */}
            {p.brand.logoUrl && <img src={p.brand.logoUrl} alt="" height={36} />}
            <span>{p.brand.name}</span>
          </header>
          <main class={p.wide ? 'wide' : undefined}>{p.children}</main>
        </div>
        <script nonce={p.nonce}>{raw(REVEAL_SCRIPT)}</script>
      </body>
    </html>
  );
}

/**
 * A white (dark: slate) panel: the body of a page, or one section of the account page.
 *
 * @example
 * <Card><h1>Check your email</h1><p>We sent a link to you@example.com.</p></Card>
 */
export function Card(p: { id?: string; children: Child }) {
  return (
    <div class="card" id={p.id}>
      {p.children}
    </div>
  );
}

/**
 * One part of a card with several (a section of the account page), under a rule, headed by an h3.
 *
 * @example
 * <Sub id="change-password"><h3>Password</h3>...</Sub>
 */
export function Sub(p: { id: string; children: Child }) {
  return (
    <div class="sub" id={p.id}>
      {p.children}
    </div>
  );
}

/**
 * A form that posts to the gateway, as every form here does: a same-origin POST checked by the
 * `sameOrigin` middleware (the Origin header), so no token field is needed. `returnTo`, when
 * given, travels along as the `return_to` field.
 *
 * @example
 * <PostForm action={`${prefix}/login`} returnTo={returnTo}>...</PostForm>
 */
export function PostForm(p: { action: string; returnTo?: string; label?: string; id?: string; children: Child }) {
  return (
    <form method="post" action={p.action} aria-label={p.label} id={p.id}>
      {p.returnTo !== undefined && <input type="hidden" name="return_to" value={p.returnTo} />}
      {p.children}
    </form>
  );
}

export interface FieldProps {
  /** The input's id; its hint is `${id}-hint` and its error `${id}-error`. */
  id: string;
  name: string;
  label: string;
  type?: 'email' | 'text' | 'password' | 'tel' | 'url' | 'search';
  autocomplete?: string;
  value?: string;
  required?: boolean;
  minlength?: number;
  maxlength?: number;
  inputmode?: 'text' | 'numeric' | 'email' | 'tel' | 'url';
  pattern?: string;
  autofocus?: boolean;
  /** Shown under the input and read with it (`aria-describedby`). */
  hint?: Child;
  /** This field's own error: shown under it, read with it, and the input marked `aria-invalid`. */
  error?: string | null;
  /** Ids of other text that describes the input, read first (e.g. the form's `form-error` box). */
  describedBy?: string | null;
  /** Beside the label, right-aligned: e.g. a "Forgot password?" link. */
  labelAside?: Child;
}

const describedBy = (p: FieldProps) =>
  [p.describedBy, p.hint ? `${p.id}-hint` : null, p.error ? `${p.id}-error` : null].filter(Boolean).join(' ') || undefined;

function FieldInput(p: FieldProps & { type: NonNullable<FieldProps['type']> }) {
  return (
    <input
      id={p.id}
      name={p.name}
      type={p.type}
      autocomplete={p.autocomplete}
      value={p.value}
      required={p.required ?? true}
      minlength={p.minlength}
      maxlength={p.maxlength}
      inputmode={p.inputmode}
      pattern={p.pattern}
      autofocus={p.autofocus}
      aria-invalid={p.error ? 'true' : undefined}
      aria-describedby={describedBy(p)}
    />
  );
}

function FieldFrame(p: FieldProps & { children: Child }) {
  return (
    <div class="field">
      {p.labelAside ? (
        <div class="field-head">
          <label for={p.id}>{p.label}</label>
          {p.labelAside}
        </div>
      ) : (
        <label for={p.id}>{p.label}</label>
      )}
      {p.children}
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

/**
 * A labelled input with an optional hint and error, wired with `for` and `aria-describedby`.
 * Required unless `required={false}`.
 *
 * @example
 * <Field id="login-email" name="email" label="Email" type="email" autocomplete="username" value={email} describedBy={error ? 'form-error' : null} />
 */
export function Field(p: FieldProps) {
  return (
    <FieldFrame {...p}>
      <FieldInput {...p} type={p.type ?? 'text'} />
    </FieldFrame>
  );
}

/**
 * A password input with a "Show" toggle that exists only when JavaScript runs (see
 * `REVEAL_SCRIPT`); without it, a plain password field. Use `autocomplete="new-password"` for a
 * password being chosen, so password managers offer to generate one.
 *
 * @example
 * <PasswordField id="login-password" name="password" label="Password" autocomplete="current-password"
 *   labelAside={<a href={`${prefix}/password/forgot`}>Forgot password?</a>} />
 */
export function PasswordField(p: Omit<FieldProps, 'type' | 'autocomplete'> & { autocomplete: 'current-password' | 'new-password' }) {
  return (
    <FieldFrame {...p}>
      <div class="reveal-row">
        <FieldInput {...p} type="password" />
        <button type="button" class="secondary reveal" hidden data-reveal={p.id} aria-controls={p.id} aria-pressed="false" aria-label={`Show ${p.label.toLowerCase()}`}>
          Show
        </button>
      </div>
    </FieldFrame>
  );
}

/**
 * The one primary action of a form: a full-width submit button in the accent colour. Use one
 * per page; everything else is a {@link SecondaryButton} or a link.
 *
 * @example
 * <PrimaryButton>Sign in</PrimaryButton>
 */
export function PrimaryButton(p: { name?: string; value?: string; children: Child }) {
  return (
    <button type="submit" class="button primary" name={p.name} value={p.value}>
      {p.children}
    </button>
  );
}

/**
 * A submit button of lesser weight (outlined), e.g. "Sign out" beside a primary action.
 *
 * @example
 * <PostForm action={`${prefix}/account/logout-all`}><SecondaryButton>Sign out everywhere</SecondaryButton></PostForm>
 */
export function SecondaryButton(p: { name?: string; value?: string; label?: string; children: Child }) {
  return (
    <button type="submit" class="button secondary" name={p.name} value={p.value} aria-label={p.label}>
      {p.children}
    </button>
  );
}

/**
 * A link that looks like an outlined button: provider sign-in, "Back to sign-in" on an error
 * page. `data` becomes `data-*` attributes (tests and styles find buttons by them).
 *
 * @example
 * <ButtonLink href={`${prefix}/login/github?return_to=${rt}`} data={{ provider: 'github' }}>Continue with GitHub</ButtonLink>
 */
export function ButtonLink(p: { href: string; primary?: boolean; data?: Record<string, string>; children: Child }) {
  const data = Object.fromEntries(Object.entries(p.data ?? {}).map(([k, v]) => [`data-${k}`, v]));
  return (
    <a class={p.primary ? 'button primary' : 'button secondary'} href={p.href} {...data}>
      {p.children}
    </a>
  );
}

/**
 * A confirmation banner (`role=status`, announced politely): "Your password has been changed."
 * Renders nothing without a message. Give it fixed text chosen by the server, never text
 * taken from the URL.
 *
 * @example
 * <Notice message={done === 'signed_out' ? 'You have been signed out.' : null} />
 */
export function Notice(p: { message?: string | null }) {
  if (!p.message) return null;
  return (
    <p class="banner" role="status" id="notice">
      {p.message}
    </p>
  );
}

/**
 * The form's error (`role=alert`, announced at once), id `form-error` so inputs can point at
 * it with `describedBy="form-error"`. Renders nothing without a message.
 *
 * @example
 * <ErrorBox message="The email or password is incorrect." />
 */
export function ErrorBox(p: { message?: string | null; id?: string }) {
  if (!p.message) return null;
  return (
    <div class="error" role="alert" id={p.id ?? 'form-error'}>
      {p.message}
    </div>
  );
}

/**
 * A centred line under a form offering the other way in: "No account yet? Create one".
 *
 * @example
 * <SwitchLine>Already have an account? <a href={signInHref}>Sign in</a></SwitchLine>
 */
export function SwitchLine(p: { children: Child }) {
  return <p class="switch">{p.children}</p>;
}

/**
 * A rule with a word in it between two ways of doing one thing ("or").
 *
 * @example
 * <Divider>or</Divider>
 */
export function Divider(p: { children: Child }) {
  return (
    // Not role=separator: a separator's content is not read, and "or" should be.
    <div class="divider">
      {p.children}
    </div>
  );
}

/**
 * What a `return_to` leads to, in words: the app's name, or the host of another app (an
 * allowed return origin) when it points away from the gateway. `returnTo` is already checked
 * (`safeReturnTo`): a path, or a URL of an allowed origin.
 *
 * @example
 * destinationName('https://books.example.com/x', 'https://auth.example.com', 'Acme'); // "books.example.com"
 */
export function destinationName(returnTo: string, publicUrl: string, appName: string): string {
  if (!/^https?:\/\//i.test(returnTo)) return appName;
  const url = new URL(returnTo);
  return url.origin === new URL(publicUrl).origin ? appName : url.host;
}

/**
 * The way out of the gateway's pages, back to the app the user came from (a `return_to`
 * already checked by `safeReturnTo`, or `/`).
 *
 * @example
 * <BackToApp href={returnTo} appName={brand.name} />
 */
export function BackToApp(p: { href: string; appName?: string }) {
  return (
    <a class="back" href={p.href} id="back-to-app">
      <span aria-hidden="true">← </span>
      {p.appName ? `Back to ${p.appName}` : 'Back to the app'}
    </a>
  );
}
