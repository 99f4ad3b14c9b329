/**
 * The page a failed provider sign-in lands on, and the gateway's other error pages (404, 405,
 * no sign-up): what went wrong in plain words (escaped by hono/jsx like all text), and one way
 * on: back to the sign-in page, or (`next`) the account page of someone already signed in. No
 * session is ever started.
 */
import { BackToApp, ButtonLink, Card, ErrorBox, Page, type Brand } from './components';

export interface OAuthErrorPageProps {
  title: string;
  message: string;
  /** The way on when `next` is not given: "Back to sign-in". */
  loginHref?: string;
  next?: { href: string; label: string };
  /** Also offer "Back to <app>" (someone signed in has an app to go back to). */
  backHref?: string;
  nonce?: string;
  brand?: Brand;
}

export function OAuthErrorPage(p: OAuthErrorPageProps) {
  const next = p.next ?? { href: p.loginHref ?? '/', label: 'Back to sign-in' };
  return (
    <Page title={p.title} nonce={p.nonce} brand={p.brand ?? { name: 'Gatehouse' }}>
      <Card>
        <h1>{p.title}</h1>
        <ErrorBox id="page-error" message={p.message} />
        <ButtonLink href={next.href} primary data={{ action: 'next' }}>
          {next.label}
        </ButtonLink>
        {p.backHref && (
          <p class="switch">
            <BackToApp href={p.backHref} appName={p.brand?.name} />
          </p>
        )}
      </Card>
    </Page>
  );
}
