/**
 * RP-initiated logout's pages (README "Apps (OpenID Connect)"): the question (an app asks to
 * sign the user out: a cross-site link alone must never do it, so the user confirms with a
 * same-origin form post) and the answer when there is no app to go back to.
 */
import { Card, Page, PostForm, PrimaryButton, type Brand } from './components';

export interface EndSessionQuestion {
  action: string;
  /** The app that asks, by its registered name, if known. */
  appName: string | null;
  /** The parameters to carry to the confirmation, as the app sent them (already checked). */
  fields: Record<string, string>;
}

export function EndSessionPage(p: EndSessionQuestion & { nonce: string; brand: Brand }) {
  return (
    <Page title="Sign out" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>Sign out?</h1>
        <p>{p.appName ? `${p.appName} asks to sign you out of ${p.brand.name}.` : `An app asks to sign you out of ${p.brand.name}.`} You will be signed out of every app that uses this sign-in.</p>
        <PostForm action={p.action} label="Sign out">
          {Object.entries(p.fields).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <input type="hidden" name="confirm" value="yes" />
          <PrimaryButton>Sign out</PrimaryButton>
        </PostForm>
      </Card>
    </Page>
  );
}

export function SignedOutPage(p: { nonce: string; brand: Brand }) {
  return (
    <Page title="Signed out" nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>You are signed out</h1>
        <p>You can close this window.</p>
      </Card>
    </Page>
  );
}
