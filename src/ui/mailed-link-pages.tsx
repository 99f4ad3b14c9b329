/**
 * The pages mailed links lead to (email verification and password reset), from the UI kit: "check your
 * email", confirming an address (a button: the GET a mail scanner prefetches never uses the
 * link), forgot and reset password, the sign-in refusal of an unverified account with its
 * resend button, and one clear page for every bad link or outage. Every text is fixed by the
 * server; the only values shown are the user's own address and the app's name.
 */
import type { Child } from 'hono/jsx';
import { ButtonLink, Card, ErrorBox, Field, Notice, Page, PasswordField, PostForm, PrimaryButton, SecondaryButton, SwitchLine, type Brand } from './components';

interface Shell {
  nonce?: string;
  brand: Brand;
}

/**
 * A page with one message and at most one way on: "Check your email", "Email confirmed", a bad
 * link, mail unavailable. `tone` picks the banner (`status`) or the error box (`alert`).
 */
export function MessagePage(p: Shell & { title: string; message: string; tone: 'status' | 'error'; action?: { href: string; label: string }; children?: Child }) {
  return (
    <Page title={p.title} nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>{p.title}</h1>
        {p.tone === 'status' ? <Notice message={p.message} /> : <ErrorBox message={p.message} />}
        {p.children}
        {p.action && (
          <ButtonLink href={p.action.href} primary data={{ action: 'next' }}>
            {p.action.label}
          </ButtonLink>
        )}
      </Card>
    </Page>
  );
}

/**
 * "Check your email" after a registration, a new confirmation link or a password reset: the
 * address the person typed (nothing they did not know), what was sent, and a button to send it
 * again (the same endpoint, so the same answer for every address).
 */
export function CheckEmailPage(p: Shell & { prefix: string; what: 'register' | 'resend' | 'forgot'; message: string; email: string; returnTo: string }) {
  // The message speaks of "this address": the page names it.
  const [before, after] = p.message.split('this address');
  const rt = encodeURIComponent(p.returnTo);
  const again = p.what === 'forgot' ? `${p.prefix}/password/forgot` : `${p.prefix}/email/verify/resend`;
  return (
    <Page title="Check your email" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Check your email</h1>
        <p class="banner" role="status" id="notice">
          {before}
          <strong>{p.email}</strong>
          {after}
        </p>
        <p>No email after a few minutes? Check your spam folder, or send it again.</p>
        <PostForm action={again} returnTo={p.returnTo} label="Send the email again" id="send-again">
          <input type="hidden" name="email" value={p.email} />
          <SecondaryButton>Send again</SecondaryButton>
        </PostForm>
        <SwitchLine>
          {p.what === 'register' ? (
            <>
              Wrong address? <a href={`${p.prefix}/register?return_to=${rt}`}>Start over</a>
            </>
          ) : (
            <a href={`${p.prefix}/login?return_to=${rt}`}>Back to sign-in</a>
          )}
        </SwitchLine>
      </Card>
    </Page>
  );
}

/**
 * The page a verification link opens: the address, the account's password (whoever confirms
 * must be whoever registered: a link alone would let a stranger who registered this address
 * have its owner verify the stranger's account), and the button that confirms it (a POST).
 */
export function ConfirmEmailPage(p: Shell & { prefix: string; token: string; email: string; returnTo?: string; askPassword: boolean; error?: string | null }) {
  return (
    <Page title="Confirm your email" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Confirm your email</h1>
        <p>
          Confirm <strong>{p.email}</strong> as the address of your {p.brand.name} account
          {p.askPassword ? ' with the password you chose when you created it. You will be signed in.' : '.'}
        </p>
        <ErrorBox message={p.error} />
        <PostForm action={`${p.prefix}/email/verify`} returnTo={p.returnTo} label="Confirm your email">
          <input type="hidden" name="token" value={p.token} />
          {p.askPassword && (
            <>
              {/* Lets password managers fill in the password of the right account. */}
              <input type="hidden" name="username" value={p.email} autocomplete="username" />
              <PasswordField id="confirm-password" name="password" label="Password" autocomplete="current-password" maxlength={256} describedBy={p.error ? 'form-error' : null} />
            </>
          )}
          <PrimaryButton>Confirm email</PrimaryButton>
        </PostForm>
        <p class="muted">
          Did not create an account with {p.brand.name}? Then someone else used your address: ignore the email and close this page. Nothing happens
          without the password.
        </p>
      </Card>
    </Page>
  );
}

/**
 * After a confirmed link signed the person in: who they are signed in as, and the way on to the
 * app (`returnTo`, already checked), named as {@link destinationName} names it.
 */
export function SignedInPage(p: Shell & { prefix: string; email: string; returnTo: string; destination: string }) {
  const toAccount = p.returnTo === `${p.prefix}/account`;
  return (
    <Page title="You are signed in" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>You are signed in</h1>
        <p class="banner" role="status" id="notice">
          Your email address is confirmed. You are signed in to {p.brand.name} as <strong>{p.email}</strong>.
        </p>
        <ButtonLink href={p.returnTo} primary data={{ action: 'next' }}>
          {toAccount ? 'Go to your account' : `Continue to ${p.destination}`}
        </ButtonLink>
        {!toAccount && (
          <SwitchLine>
            <a href={`${p.prefix}/account`}>Your account</a>
          </SwitchLine>
        )}
      </Card>
    </Page>
  );
}

/** `GET /password/forgot`: one email field. */
export function ForgotPasswordPage(p: Shell & { prefix: string; returnTo: string; email?: string; error?: string | null }) {
  const rt = encodeURIComponent(p.returnTo);
  return (
    <Page title="Forgot password" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Forgot your password?</h1>
        <p>Enter the address of your account. If it has a password, we will email you a link to choose a new one.</p>
        <ErrorBox message={p.error} />
        <PostForm action={`${p.prefix}/password/forgot`} returnTo={p.returnTo} label="Ask for a password reset link">
          <Field id="forgot-email" name="email" label="Email" type="email" autocomplete="email" value={p.email} describedBy={p.error ? 'form-error' : null} />
          <PrimaryButton>Email me a link</PrimaryButton>
        </PostForm>
        <SwitchLine>
          Remembered it? <a href={`${p.prefix}/login?return_to=${rt}`}>Sign in</a>
        </SwitchLine>
      </Card>
    </Page>
  );
}

/** The page a reset link opens: the new password (the link is used only when this is posted). */
export function ResetPasswordPage(p: Shell & { prefix: string; token: string; email: string; minLength: number; error?: string | null }) {
  return (
    <Page title="Choose a new password" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Choose a new password</h1>
        <p>
          For <strong>{p.email}</strong>. Every device signed in to this account will be signed out.
        </p>
        <ErrorBox message={p.error} />
        <PostForm action={`${p.prefix}/password/reset`} label="Set a new password">
          <input type="hidden" name="token" value={p.token} />
          {/* Lets password managers store the new password for the right account. */}
          <input type="hidden" name="username" value={p.email} autocomplete="username" />
          <PasswordField
            id="reset-password"
            name="password"
            label="New password"
            autocomplete="new-password"
            minlength={p.minLength}
            maxlength={256}
            describedBy={p.error ? 'form-error' : null}
            hint={`At least ${p.minLength} characters. Long passphrases are welcome.`}
          />
          <PrimaryButton>Set new password</PrimaryButton>
        </PostForm>
      </Card>
    </Page>
  );
}

/** Password sign-in refused because the address is not confirmed yet: say so, offer a new link. */
export function EmailNotVerifiedPage(p: Shell & { prefix: string; email: string; returnTo: string }) {
  const rt = encodeURIComponent(p.returnTo);
  return (
    <Page title="Confirm your email first" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Confirm your email first</h1>
        <ErrorBox message={`The address ${p.email} is not confirmed yet. Open the link we emailed you, then sign in again.`} />
        <p>No email? Check your spam folder, or ask for a new link.</p>
        <PostForm action={`${p.prefix}/email/verify/resend`} returnTo={p.returnTo} label="Send a new confirmation link">
          <input type="hidden" name="email" value={p.email} />
          <SecondaryButton>Send a new link</SecondaryButton>
        </PostForm>
        <SwitchLine>
          <a href={`${p.prefix}/login?return_to=${rt}`}>Back to sign-in</a>
        </SwitchLine>
      </Card>
    </Page>
  );
}
