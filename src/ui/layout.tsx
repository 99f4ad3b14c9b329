/**
 * Kept for pages written before the UI kit: `Layout` is {@link Page} with the default brand.
 * New pages use ui/components.tsx directly.
 */
import type { Child } from 'hono/jsx';
import { Page, type Brand } from './components';

export { STYLES } from './styles';
export { ErrorBox } from './components';

export function Layout(props: { title: string; nonce?: string; wide?: boolean; brand?: Brand; children: Child }) {
  return (
    <Page title={props.title} nonce={props.nonce} wide={props.wide} brand={props.brand ?? { name: 'Gatehouse' }}>
      {props.children}
    </Page>
  );
}
