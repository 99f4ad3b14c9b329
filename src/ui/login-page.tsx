/**
 * `GET /auth/login`: a button per enabled provider and, when enabled, the password forms.
 * Plain HTML forms: it works without JavaScript.
 */
import { ErrorBox, Layout } from './layout';
import { PasskeySignIn } from './passkeys-section';

export interface LoginPageProps {
  prefix: string;
  returnTo: string;
  providers: { id: string; name: string }[];
  passwordLogin: boolean;
  registration: boolean;
  minLength: number;
  error?: string | null;
  /** A confirmation such as "You have been signed out." */
  notice?: string | null;
  /** Which form the error and the echoed email belong to (default: the sign-in form). */
  form?: 'login' | 'register';
  email?: string;
  nonce?: string;
  /** Offer "Sign in with a passkey" and passkey autofill (issue 12). */
  passkeys?: boolean;
}

export function LoginPage(p: LoginPageProps) {
  const rt = encodeURIComponent(p.returnTo);
  // A failed registration shows its error and email in the "Create an account" card, where
  // the user typed them, not above the sign-in form.
  const registering = p.form === 'register' && p.passwordLogin && p.registration;
  const loginError = registering ? null : p.error;
  return (
    <Layout title="Sign in" nonce={p.nonce}>
      <div class="card">
        <h1>Sign in</h1>
        {p.notice && (
          <p role="status" id="notice">
            {p.notice}
          </p>
        )}
        <ErrorBox message={loginError} />
        {p.providers.length > 0 && (
          <nav class="providers" aria-label="Sign in with a provider">
            {p.providers.map((provider) => (
              <a class="button" href={`${p.prefix}/login/${provider.id}?return_to=${rt}`} data-provider={provider.id}>
                Continue with {provider.name}
              </a>
            ))}
          </nav>
        )}
        {p.passkeys && <PasskeySignIn prefix={p.prefix} returnTo={p.returnTo} nonce={p.nonce} />}
        {p.passwordLogin && (
          <form method="post" action={`${p.prefix}/login`} aria-labelledby="password-heading">
            <h2 id="password-heading" class={p.providers.length ? 'spaced' : undefined}>
              {p.providers.length ? 'Or with your email' : 'With your email'}
            </h2>
            <input type="hidden" name="return_to" value={p.returnTo} />
            <label for="login-email">Email</label>
            <input id="login-email" name="email" type="email" autocomplete={p.passkeys ? 'username webauthn' : 'username'} required value={registering ? undefined : p.email} aria-describedby={loginError ? 'form-error' : undefined} />
            <label for="login-password">Password</label>
            <input id="login-password" name="password" type="password" autocomplete="current-password" required />
            <button type="submit">Sign in</button>
          </form>
        )}
        {!p.passwordLogin && p.providers.length === 0 && <p>No sign-in method is configured.</p>}
      </div>
      {p.passwordLogin && p.registration && (
        <div class="card">
          <form method="post" action={`${p.prefix}/register`} aria-labelledby="register-heading">
            <h2 id="register-heading">Create an account</h2>
            {registering && <ErrorBox message={p.error} />}
            <input type="hidden" name="return_to" value={p.returnTo} />
            <label for="register-email">Email</label>
            <input id="register-email" name="email" type="email" autocomplete="email" required value={registering ? p.email : undefined} aria-describedby={registering && p.error ? 'form-error' : undefined} />
            <label for="register-password">Password</label>
            <input id="register-password" name="password" type="password" autocomplete="new-password" minlength={p.minLength} maxlength={256} required aria-describedby={registering && p.error ? 'form-error password-hint' : 'password-hint'} />
            <p id="password-hint" class="muted">At least {p.minLength} characters. Long passphrases are welcome.</p>
            <button type="submit" class="secondary">Create account</button>
          </form>
        </div>
      )}
    </Layout>
  );
}
