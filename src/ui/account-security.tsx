/**
 * The account page's self-service sections: managing sign-in methods
 * (unlink, link another provider), changing or adding a password, changing the email address,
 * deleting the account. Plain forms posting to `routes/account-changes.ts` and
 * `routes/linked-identities.ts`; a mail-based action is offered only when the gateway can send mail.
 */
import { Field, PasswordField, PostForm, PrimaryButton, SecondaryButton, Sub } from './components';

export interface AccountSecurityProps {
  prefix: string;
  email: string;
  emailVerified: boolean;
  hasPassword: boolean;
  /** The gateway can send mail (links for adding a password and changing the address). */
  mail: boolean;
  passwordLogin: boolean;
  identities: { provider: string; subject: string; name: string; email: string | null }[];
  /** Enabled providers the user has no identity with yet. */
  linkable: { id: string; name: string }[];
  minPasswordLength: number;
}

/** Unlink and link controls, under the list of sign-in methods. */
export function ManageSignInMethods(p: AccountSecurityProps) {
  const ways = p.identities.length + (p.hasPassword ? 1 : 0);
  return (
    <div id="manage-sign-in">
      {p.identities.map((i) =>
        ways > 1 ? (
          <PostForm action={`${p.prefix}/account/identities/unlink`} label={`Unlink ${i.name}`}>
            <input type="hidden" name="provider" value={i.provider} />
            <input type="hidden" name="subject" value={i.subject} />
            <SecondaryButton label={`Unlink ${i.name}${i.email ? ` (${i.email})` : ''}`}>Unlink {i.name}</SecondaryButton>
          </PostForm>
        ) : (
          <p class="muted">{i.name} is your only way to sign in, so it cannot be unlinked.</p>
        ),
      )}
      {p.linkable.map((provider) => (
        <PostForm action={`${p.prefix}/account/identities/link/${encodeURIComponent(provider.id)}`} label={`Link ${provider.name}`}>
          <SecondaryButton>Link {provider.name}</SecondaryButton>
        </PostForm>
      ))}
    </div>
  );
}

/** Sign-in & security: change the password (the section's primary action), or add one by mail. */
export function PasswordSection(p: AccountSecurityProps) {
  if (p.hasPassword) {
    return (
      <Sub id="change-password">
        <h3>Password</h3>
        <p class="muted">Your other sessions are signed out; this one stays.</p>
        <PostForm action={`${p.prefix}/account/password`} label="Change password">
          <PasswordField id="current-password" name="current_password" label="Current password" autocomplete="current-password" />
          <PasswordField id="new-password" name="new_password" label="New password" autocomplete="new-password" minlength={p.minPasswordLength} hint={`At least ${p.minPasswordLength} characters.`} />
          <PrimaryButton>Change password</PrimaryButton>
        </PostForm>
      </Sub>
    );
  }
  if (!p.passwordLogin || !p.mail || !p.emailVerified) return null;
  return (
    <Sub id="add-password">
      <h3>Password</h3>
      <p>We will email a link to {p.email}; it lets you set a password so you can also sign in with your email address.</p>
      <PostForm action={`${p.prefix}/account/password/add`} label="Add a password">
        <SecondaryButton>Email me a link</SecondaryButton>
      </PostForm>
    </Sub>
  );
}

/** Profile: change the address (the section's primary action), when the gateway can send mail. */
export function EmailSection(p: AccountSecurityProps) {
  if (!p.mail) return null;
  return (
    <Sub id="change-email">
      <h3>Change email address</h3>
      <p class="muted">We email a link to the new address; the change takes effect once you follow it, and {p.email} is told.</p>
      <PostForm action={`${p.prefix}/account/email`} label="Change email address">
        <Field id="new-email" name="new_email" label="New email address" type="email" autocomplete="email" maxlength={254} />
        {p.hasPassword && (
          <PasswordField id="email-current-password" name="current_password" label="Current password" autocomplete="current-password" />
        )}
        <PrimaryButton>Send confirmation link</PrimaryButton>
      </PostForm>
    </Sub>
  );
}

/** Danger zone: delete the account, behind the password (or a recent provider sign-in). */
export function DeleteSection(p: AccountSecurityProps) {
  return (
    <Sub id="delete-account">
      <h3>Delete account</h3>
      <p>
        This deletes your account, its sign-in methods and sessions at once. It cannot be undone.
        {!p.hasPassword && ' Sign in again with your provider first if you signed in more than a few minutes ago.'}
      </p>
      <PostForm action={`${p.prefix}/account/delete`} label="Delete account">
        {p.hasPassword && <PasswordField id="delete-password" name="password" label="Current password" autocomplete="current-password" />}
        <button type="submit" class="button danger">
          Delete my account
        </button>
      </PostForm>
    </Sub>
  );
}
