/**
 * `GET /auth/login` and `GET /auth/register`: the "Sign in" and "Create account" views, each
 * with its own URL and one primary button, links between them (carrying `return_to`), and a
 * button per enabled provider. Plain HTML forms: it works without JavaScript.
 */
import type { Child } from 'hono/jsx';
import { ButtonLink, Card, Divider, ErrorBox, Field, Notice, Page, PasswordField, PostForm, PrimaryButton, SwitchLine, type Brand } from './components';
import { PasskeySignIn } from './passkeys-section';

export interface LoginPageProps {
  prefix: string;
  returnTo: string;
  providers: { id: string; name: string }[];
  passwordLogin: boolean;
  registration: boolean;
  minLength: number;
  /** Which view: sign in (default) or create account. */
  view?: 'login' | 'register';
  /** Features the page may link to, when the gateway has them turned on. */
  offers?: { forgotPassword?: boolean; emailCode?: boolean };
  error?: string | null;
  /** A confirmation such as "You have been signed out." */
  notice?: string | null;
  /** The email to fill in again after a failed post. */
  email?: string;
  nonce?: string;
  brand?: Brand;
  /** Offer "Sign in with a passkey" and passkey autofill. */
  passkeys?: boolean;
  /** What the sign-in leads to: the app's name, or the host of another app `returnTo` names. */
  destination?: string;
}

/** Whether `GET {prefix}/register` has anything to offer: password accounts, open registration. */
export const canRegister = (p: Pick<LoginPageProps, 'passwordLogin' | 'registration'>) => p.passwordLogin && p.registration;

function Providers(p: LoginPageProps & { rt: string }) {
  if (p.providers.length === 0) return null;
  return (
    <nav class="providers" aria-label="Continue with a provider">
      {p.providers.map((provider) => (
        <ButtonLink href={`${p.prefix}/login/${provider.id}?return_to=${p.rt}`} data={{ provider: provider.id }}>
          Continue with {provider.name}
        </ButtonLink>
      ))}
    </nav>
  );
}

function SignInForm(p: LoginPageProps & { rt: string }) {
  const describedBy = p.error ? 'form-error' : null;
  const forgot: Child = p.offers?.forgotPassword ? (
    <a href={`${p.prefix}/password/forgot?return_to=${p.rt}`} id="forgot-password">
      Forgot password?
    </a>
  ) : null;
  return (
    <PostForm action={`${p.prefix}/login`} returnTo={p.returnTo} label="Sign in with email and password">
      <Field id="login-email" name="email" label="Email" type="email" autocomplete={p.passkeys ? 'username webauthn' : 'username'} value={p.email} describedBy={describedBy} />
      <PasswordField id="login-password" name="password" label="Password" autocomplete="current-password" describedBy={describedBy} labelAside={forgot} />
      <PrimaryButton>Sign in</PrimaryButton>
    </PostForm>
  );
}

function RegisterForm(p: LoginPageProps) {
  const describedBy = p.error ? 'form-error' : null;
  return (
    <PostForm action={`${p.prefix}/register`} returnTo={p.returnTo} label="Create an account with email and password">
      <Field id="register-email" name="email" label="Email" type="email" autocomplete="email" value={p.email} describedBy={describedBy} />
      <PasswordField
        id="register-password"
        name="password"
        label="Password"
        autocomplete="new-password"
        minlength={p.minLength}
        maxlength={256}
        describedBy={describedBy}
        hint={`At least ${p.minLength} characters. Long passphrases are welcome.`}
      />
      <PrimaryButton>Create account</PrimaryButton>
    </PostForm>
  );
}

export function LoginPage(p: LoginPageProps) {
  const rt = encodeURIComponent(p.returnTo);
  const register = p.view === 'register' && canRegister(p);
  const title = register ? 'Create account' : 'Sign in';
  const other = register ? `${p.prefix}/login?return_to=${rt}` : `${p.prefix}/register?return_to=${rt}`;
  return (
    <Page title={title} nonce={p.nonce} brand={p.brand ?? { name: 'Gatehouse' }}>
      <Card>
        <h1>{title}</h1>
        {p.destination && (
          <p class="lede" id="destination">
            to continue to <strong>{p.destination}</strong>
          </p>
        )}
        <Notice message={p.notice} />
        <ErrorBox message={p.error} />
        <Providers {...p} rt={rt} />
        {!register && p.passkeys && <PasskeySignIn prefix={p.prefix} returnTo={p.returnTo} nonce={p.nonce} />}
        {p.passwordLogin && p.providers.length > 0 && <Divider>or</Divider>}
        {register ? <RegisterForm {...p} /> : p.passwordLogin && <SignInForm {...p} rt={rt} />}
        {!register && p.offers?.emailCode && (
          <SwitchLine>
            <a href={`${p.prefix}/login/email-code?return_to=${rt}`} id="to-email-code">
              Email me a sign-in code
            </a>
          </SwitchLine>
        )}
        {!p.passwordLogin && p.providers.length === 0 && <p>No sign-in method is configured.</p>}
        {canRegister(p) && (
          <SwitchLine>
            {register ? 'Already have an account? ' : 'New here? '}
            <a href={other} id={register ? 'to-login' : 'to-register'}>
              {register ? 'Sign in' : 'Create an account'}
            </a>
          </SwitchLine>
        )}
      </Card>
    </Page>
  );
}
