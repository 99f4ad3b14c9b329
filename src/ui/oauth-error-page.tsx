/**
 * The page a failed provider sign-in lands on: what went wrong in plain words (escaped by
 * hono/jsx like all text), and a way back to the sign-in page. No session is ever started.
 */
import { Layout } from './layout';
import type { Brand } from './components';

export interface OAuthErrorPageProps {
  title: string;
  message: string;
  loginHref: string;
  nonce?: string;
  brand?: Brand;
}

export function OAuthErrorPage(p: OAuthErrorPageProps) {
  return (
    <Layout title={p.title} nonce={p.nonce} brand={p.brand}>
      <div class="card">
        <h1>{p.title}</h1>
        <div class="error" role="alert">
          {p.message}
        </div>
        <a class="button" href={p.loginHref}>
          Back to sign-in
        </a>
      </div>
    </Layout>
  );
}
