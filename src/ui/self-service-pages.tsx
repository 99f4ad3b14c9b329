/**
 * The pages of account self-service outside the account page: what a mailed link opens (set a
 * first password, confirm a new address: a GET shows a form, only its POST uses the link, since
 * mail scanners fetch links), and the outcome of a form post (done, or what went wrong).
 */
import { ButtonLink, Card, ErrorBox, Notice, Page, PasswordField, PostForm, PrimaryButton, type Brand } from './components';

interface Common {
  nonce: string;
  brand: Brand;
  prefix: string;
}

export function AddPasswordPage(p: Common & { token: string; email: string; minPasswordLength: number; error?: string | null }) {
  return (
    <Page title="Set a password" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Set a password</h1>
        <ErrorBox message={p.error} />
        <p>Choose a password for {p.email}.</p>
        <PostForm action={`${p.prefix}/account/password/add/confirm`} label="Set a password">
          <input type="hidden" name="token" value={p.token} />
          <PasswordField id="add-password" name="password" label="New password" autocomplete="new-password" minlength={p.minPasswordLength} hint={`At least ${p.minPasswordLength} characters.`} describedBy={p.error ? 'form-error' : null} />
          <PrimaryButton>Set password</PrimaryButton>
        </PostForm>
      </Card>
    </Page>
  );
}

/**
 * What a change-email link opens. It names the account that would take the address, and asks
 * for that account's password unless its holder signed in recently (`proof`); an account
 * without a password signs in first and comes back here.
 */
export function ConfirmEmailPage(
  p: Common & { token: string; email: string; currentEmail: string; proof: 'signed_in' | 'password' | 'sign_in_first'; signInHref: string },
) {
  return (
    <Page title="Confirm your new email address" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Confirm your new email address</h1>
        <p>
          The account currently using <strong id="current-address">{p.currentEmail}</strong> asked to use <strong id="new-address">{p.email}</strong> from now on.
          Confirm only if that account is yours.
        </p>
        {p.proof === 'sign_in_first' ? (
          <>
            <p>To confirm, sign in to that account first; you will come back here.</p>
            <ButtonLink href={p.signInHref} primary>
              Sign in to confirm
            </ButtonLink>
          </>
        ) : (
          <PostForm action={`${p.prefix}/account/email/confirm`} label="Confirm new email address">
            <input type="hidden" name="token" value={p.token} />
            {p.proof === 'password' ? (
              <PasswordField id="confirm-email-password" name="current_password" label={`Password of the account using ${p.currentEmail}`} autocomplete="current-password" />
            ) : null}
            <PrimaryButton>Confirm new address</PrimaryButton>
          </PostForm>
        )}
      </Card>
    </Page>
  );
}

/** The outcome of an action: a confirmation (role=status) or an error (role=alert), and where to go next. */
export function AccountResultPage(p: Common & { title: string; notice?: string | null; error?: string | null; next: { href: string; label: string } }) {
  return (
    <Page title={p.title} nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>{p.title}</h1>
        <Notice message={p.notice} />
        <ErrorBox message={p.error} />
        <a class="button secondary" href={p.next.href} id="next">
          {p.next.label}
        </a>
      </Card>
    </Page>
  );
}

/**
 * The step between "Link GitHub" (a POST, CSRF-checked) and the provider: a plain link. A form
 * post cannot answer with a redirect to the provider, because the page's CSP `form-action`
 * also governs where the redirect after a submission may go, and it names this gateway only.
 */
export function ContinueToProviderPage(p: Common & { provider: { id: string; name: string }; url: string }) {
  return (
    <Page title={`Link ${p.provider.name}`} nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Link {p.provider.name}</h1>
        <p>Sign in at {p.provider.name} to link it to your account. You will come back to your account page.</p>
        <ButtonLink href={p.url} primary data={{ provider: p.provider.id }}>
          Continue to {p.provider.name}
        </ButtonLink>
        <p>
          <a href={`${p.prefix}/account`}>Cancel</a>
        </p>
      </Card>
    </Page>
  );
}
