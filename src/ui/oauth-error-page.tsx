/**
 * The page a failed provider sign-in lands on, and the gateway's other error pages (404, 405,
 * no sign-up): what went wrong in plain words (escaped by hono/jsx like all text), and a way
 * back to the sign-in page. No session is ever started.
 */
import { ButtonLink, Card, ErrorBox, Page, type Brand } from './components';

export interface OAuthErrorPageProps {
  title: string;
  message: string;
  loginHref: string;
  nonce?: string;
  brand?: Brand;
}

export function OAuthErrorPage(p: OAuthErrorPageProps) {
  return (
    <Page title={p.title} nonce={p.nonce} brand={p.brand ?? { name: 'Gatehouse' }}>
      <Card>
        <h1>{p.title}</h1>
        <ErrorBox id="page-error" message={p.message} />
        <ButtonLink href={p.loginHref} primary>
          Back to sign-in
        </ButtonLink>
      </Card>
    </Page>
  );
}
