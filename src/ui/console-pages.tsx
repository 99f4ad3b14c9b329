/**
 * The operators' console's page kit (routes/console.ts serves it): one shell with the areas as
 * navigation, the home that lists the areas, the confirmation step every action goes through,
 * and the console's error page. Built from the product's UI kit (ui/components.tsx): the same
 * stylesheet, colours and CSP nonce, no script of its own, readable at 375 px.
 *
 * An area's page is `<ConsolePage ... area="users">...</ConsolePage>`; its actions are plain
 * form posts ({@link ActionForm}) whose first answer is a {@link ConfirmPage}.
 */
import type { Child } from 'hono/jsx';
import { ButtonLink, Card, ErrorBox, Notice, Page, type Brand } from './components';

/** One area of the console as the navigation shows it. */
export interface ConsoleNavArea {
  id: string;
  title: string;
  summary: string;
  href: string;
}

export interface ConsoleChrome {
  nonce?: string;
  brand: Brand;
  /** The console's home (`{AUTH_PREFIX}/admin`). */
  home: string;
  areas: readonly ConsoleNavArea[];
  /** The signed-in admin's address, shown in the header. */
  admin: string;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
/** "2026-11-23 22:04 UTC". */
const utcMinute = (seconds: number) => `${iso(seconds).slice(0, 16).replace('T', ' ')} UTC`;

/** "2026-11-23 22:04 UTC", in a `<time>` element. */
export function When(p: { at: number }) {
  return <time datetime={iso(p.at)}>{utcMinute(p.at)}</time>;
}

/** A short label beside a value ("Disabled", "first party"); `warn` for what needs attention. */
export function Tag(p: { tone?: 'warn'; children: string }) {
  return <span class={p.tone === 'warn' ? 'tag warn' : 'tag'}>{p.children}</span>;
}

/** A card of an area's page with its heading (`danger` for one that holds irreversible actions). */
export function Section(p: { id: string; title: string; danger?: boolean; children: Child }) {
  return (
    <section class={p.danger ? 'card danger-zone' : 'card'} id={p.id} aria-labelledby={`${p.id}-heading`}>
      <h2 id={`${p.id}-heading`}>{p.title}</h2>
      {p.children}
    </section>
  );
}

/** The status of something an admin disabled: "Disabled since 2026-11-23 22:04 UTC", as a warning. */
export function DisabledSince(p: { at: number }) {
  return <Tag tone="warn">{`Disabled since ${utcMinute(p.at)}`}</Tag>;
}

/** Previous and next links of a paged list; nothing when there is one page. */
export function Pager(p: { page: number; previous: string | null; next: string | null }) {
  if (!p.previous && !p.next) return null;
  return (
    <nav class="pager" aria-label="Pages">
      {p.previous ? (
        <a href={p.previous} rel="prev">
          ← Previous
        </a>
      ) : (
        <span />
      )}
      <span class="muted">Page {p.page}</span>
      {p.next ? (
        <a href={p.next} rel="next">
          Next →
        </a>
      ) : (
        <span />
      )}
    </nav>
  );
}

/**
 * The console's page shell: the product's page with a wide column, the console's navigation
 * (the home and every area, the current one marked), the page's `h1`, and its notice.
 */
export function ConsolePage(p: ConsoleChrome & { title: string; area: string | null; notice?: string | null; children: Child }) {
  return (
    <Page title={`${p.title} · Console`} nonce={p.nonce} brand={p.brand} wide>
      <nav class="console-nav" aria-label="Console">
        <a href={p.home} aria-current={p.area === null ? 'page' : undefined}>
          Console
        </a>
        {p.areas.map((a) => (
          <a href={a.href} aria-current={p.area === a.id ? 'page' : undefined} data-area={a.id}>
            {a.title}
          </a>
        ))}
      </nav>
      <div class="console">
        <h1>{p.title}</h1>
        <p class="lede">
          Signed in as <strong>{p.admin}</strong> (administrator)
        </p>
        <Notice message={p.notice} />
        {p.children}
      </div>
    </Page>
  );
}

/** The console's home: what each area is for, one link per area. */
export function ConsoleHome(p: ConsoleChrome) {
  return (
    <ConsolePage {...p} title="Console" area={null}>
      <ul class="plain area-list" id="areas">
        {p.areas.map((a) => (
          <li class="card" data-area={a.id}>
            <h2>
              <a href={a.href}>{a.title}</a>
            </h2>
            <p class="muted">{a.summary}</p>
          </li>
        ))}
      </ul>
    </ConsolePage>
  );
}

/**
 * A form posting one action. `fields` travel as hidden inputs; with `confirmed` it also sends
 * `confirm=yes` (the second step: the confirmation page's own form).
 */
export function ActionForm(p: { action: string; fields?: Record<string, string>; confirmed?: boolean; label: string; danger?: boolean; id?: string; children?: Child }) {
  return (
    <form method="post" action={p.action} id={p.id}>
      {Object.entries(p.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      {p.confirmed && <input type="hidden" name="confirm" value="yes" />}
      {p.children}
      <button type="submit" class={p.danger ? 'button danger' : 'button secondary'}>
        {p.label}
      </button>
    </form>
  );
}

export interface ConfirmPageProps extends ConsoleChrome {
  area: string;
  /** "Disable alice@example.com?" */
  title: string;
  /** What will happen, in plain words. */
  consequences: string[];
  action: string;
  fields?: Record<string, string>;
  confirmLabel: string;
  danger: boolean;
  cancelHref: string;
}

/**
 * The first answer to every console action: what it will do, a button that posts it again with
 * `confirm=yes`, and a way back. Nothing has changed yet.
 */
export function ConfirmPage(p: ConfirmPageProps) {
  return (
    <ConsolePage {...p} title={p.title} area={p.area}>
      <section class={p.danger ? 'card danger-zone' : 'card'} id="confirm" aria-labelledby="confirm-heading">
        <h2 id="confirm-heading">Please confirm</h2>
        <ul>
          {p.consequences.map((line) => (
            <li>{line}</li>
          ))}
        </ul>
        <div class="actions">
          <ActionForm action={p.action} fields={p.fields} confirmed label={p.confirmLabel} danger={p.danger} id="confirm-form" />
          <ButtonLink href={p.cancelHref} data={{ action: 'cancel' }}>
            Cancel
          </ButtonLink>
        </div>
      </section>
    </ConsolePage>
  );
}

/** The console's error page: what went wrong, and one way on. */
export function ConsoleErrorPage(p: { nonce?: string; brand: Brand; title: string; message: string; next: { href: string; label: string } }) {
  return (
    <Page title={p.title} nonce={p.nonce} brand={p.brand}>
      <Card>
        <h1>{p.title}</h1>
        <ErrorBox id="page-error" message={p.message} />
        <ButtonLink href={p.next.href} primary data={{ action: 'next' }}>
          {p.next.label}
        </ButtonLink>
      </Card>
    </Page>
  );
}
