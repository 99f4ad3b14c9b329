/**
 * The console's Routes and policy area (routes/console-routes.ts): the loaded routes with who
 * each admits, in words, and the "who can reach this?" explainer (a GET form: it changes nothing).
 */
import type { Child } from 'hono/jsx';
import { ErrorBox, Field } from './components';
import { ConsolePage, type ConsoleChrome } from './console-pages';

export interface RouteView {
  host: string;
  path: string;
  /** The origin's host (never its credentials or path), or its service binding. */
  origin: string;
  auth: string;
  /** Null on a public route (no one is checked). */
  revocation: string | null;
  admits: string;
  /** Deny rules first (they win), then allow rules. */
  rules: { label: string; words: string }[];
  stepUp: string | null;
  external: string | null;
  resource: string | null;
  logoutNotify: string | null;
}

export interface ExplainForm {
  user: string;
  url: string;
  method: string;
}

export interface ExplainAnswerView {
  decision: 'allow' | 'deny' | 'step-up' | 'not-proxied';
  headline: string;
  /** "host /path" of the matched route, or null. */
  route: string | null;
  because: string[];
  facts: string[];
  method: string;
  url: string;
}

function ExplainFormCard(p: { action: string; form: ExplainForm; error?: string }) {
  return (
    <section class="card" id="explain" aria-labelledby="explain-heading">
      <h2 id="explain-heading">Who can reach this?</h2>
      <p class="muted">A user and a URL: which route matches, and whether the user would pass, decided by the proxy’s own rules.</p>
      <ErrorBox id="explain-error" message={p.error} />
      <form method="get" action={p.action} id="explain-form">
        <Field id="explain-user" name="user" label="User (email address or id)" value={p.form.user} maxlength={254} autocomplete="off" describedBy={p.error ? 'explain-error' : null} />
        <Field id="explain-url" name="url" label="URL (or a path on the gateway’s host)" value={p.form.url} maxlength={2048} autocomplete="off" hint="For example https://app.example.com/reports/q3 or /ops/deploy" />
        <Field id="explain-method" name="method" label="Method" value={p.form.method} maxlength={32} required={false} autocomplete="off" />
        <button type="submit" class="button primary">
          Explain
        </button>
      </form>
    </section>
  );
}

function Row(p: { label: string; children: Child }) {
  return (
    <tr>
      <th scope="row">{p.label}</th>
      <td class="wrap">{p.children}</td>
    </tr>
  );
}

export function RoutesPage(p: ConsoleChrome & { routes: RouteView[]; explain: string; form: ExplainForm }) {
  return (
    <ConsolePage {...p} title="Routes and policy" area="routes">
      <ExplainFormCard action={p.explain} form={p.form} />
      <section class="card" id="routes" aria-labelledby="routes-heading">
        <h2 id="routes-heading">{`Routes (${p.routes.length})`}</h2>
        {p.routes.length === 0 ? (
          <p class="muted" id="no-routes">
            No routes: ROUTES is empty, so the gateway proxies nothing.
          </p>
        ) : (
          <p class="muted">As loaded from ROUTES. A request goes to the route of its host with the longest matching path.</p>
        )}
      </section>
      {p.routes.map((r, i) => (
        <section class="card route" id={`route-${i}`} data-path={r.path} aria-labelledby={`route-${i}-heading`}>
          <h2 id={`route-${i}-heading`} class="wrap">
            {r.path} <span class="muted">on {r.host}</span>
          </h2>
          <table aria-label={`Route ${r.path}`}>
            <tbody>
              <Row label="Origin">{r.origin}</Row>
              <Row label="Sign-in">{r.auth}</Row>
              {r.revocation !== null && <Row label="Revocation">{r.revocation}</Row>}
              <Row label="Admits">{r.admits}</Row>
            </tbody>
          </table>
          {r.rules.length > 0 && (
            <ul class="plain rows rules">
              {r.rules.map((rule) => (
                <li data-rule={rule.label}>
                  <code>{rule.label}</code> {rule.words}
                </li>
              ))}
            </ul>
          )}
          {[r.stepUp, r.external, r.resource, r.logoutNotify]
            .filter((line): line is string => line !== null)
            .map((line) => (
              <p class="wrap">{line}</p>
            ))}
        </section>
      ))}
    </ConsolePage>
  );
}

const VERDICT: Record<ExplainAnswerView['decision'], string> = { allow: 'Allowed', deny: 'Refused', 'step-up': 'Step-up needed', 'not-proxied': 'Not proxied' };

export function ExplainPage(p: ConsoleChrome & { action: string; back: string; form: ExplainForm; answer?: ExplainAnswerView; error?: string }) {
  const a = p.answer;
  return (
    <ConsolePage {...p} title="Who can reach this?" area="routes">
      <a class="back" href={p.back}>
        <span aria-hidden="true">← </span>All routes
      </a>
      {a && (
        <section class={a.decision === 'allow' ? 'card' : 'card danger-zone'} id="answer" data-decision={a.decision} aria-labelledby="answer-heading">
          <h2 id="answer-heading">
            <span class={a.decision === 'allow' ? 'tag' : 'tag warn'}>{VERDICT[a.decision]}</span> <span class="wrap">{`${a.method} ${a.url}`}</span>
          </h2>
          <p id="headline">{a.headline}</p>
          {a.route && (
            <p id="matched">
              Route: <strong class="wrap">{a.route}</strong>
            </p>
          )}
          {a.because.length > 0 && (
            <ul id="because">
              {a.because.map((line) => (
                <li>{line}</li>
              ))}
            </ul>
          )}
          {a.facts.length > 0 && (
            <>
              <h3>What it was decided on</h3>
              <ul id="facts">
                {a.facts.map((line) => (
                  <li>{line}</li>
                ))}
              </ul>
            </>
          )}
        </section>
      )}
      <ExplainFormCard action={p.action} form={p.form} error={p.error} />
    </ConsolePage>
  );
}
