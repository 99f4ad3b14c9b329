/**
 * `GET /auth/login/email-code`: sign in with a one-time code sent by mail. Step one asks for the
 * address; step two (after the code was requested) asks for the code. A small page of its own,
 * so the sign-in page links to it without depending on it.
 */
import { Card, ErrorBox, Field, Notice, Page, PostForm, PrimaryButton, SwitchLine, type Brand } from './components';

export interface EmailCodePageProps {
  nonce: string;
  brand: Brand;
  prefix: string;
  returnTo: string;
  step: 'email' | 'code';
  email?: string;
  digits: number;
  notice?: string | null;
  error?: string | null;
}

export function EmailCodePage(p: EmailCodePageProps) {
  const back = `${p.prefix}/login?return_to=${encodeURIComponent(p.returnTo)}`;
  return (
    <Page title="Sign in with an email code" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Sign in with an email code</h1>
        <Notice message={p.notice} />
        <ErrorBox message={p.error} />
        {p.step === 'email' ? (
          <PostForm action={`${p.prefix}/login/email-code`} returnTo={p.returnTo} label="Request a code">
            <Field id="code-email" name="email" label="Email" type="email" autocomplete="username" value={p.email} maxlength={254} describedBy={p.error ? 'form-error' : null} />
            <PrimaryButton>Email me a code</PrimaryButton>
          </PostForm>
        ) : (
          <PostForm action={`${p.prefix}/login/email-code/verify`} returnTo={p.returnTo} label="Enter the code">
            <input type="hidden" name="email" value={p.email} />
            <Field
              id="code"
              name="code"
              label="Code"
              autocomplete="one-time-code"
              inputmode="numeric"
              pattern={`[0-9]{${p.digits}}`}
              minlength={p.digits}
              maxlength={p.digits}
              hint={`The ${p.digits} digits from the email we sent to ${p.email}.`}
              describedBy={p.error ? 'form-error' : null}
              autofocus
            />
            <PrimaryButton>Sign in</PrimaryButton>
          </PostForm>
        )}
        <SwitchLine>
          <a href={back}>Other ways to sign in</a>
        </SwitchLine>
      </Card>
    </Page>
  );
}
