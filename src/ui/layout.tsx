/**
 * The page shell for Gatehouse's own HTML: no scripts, no third-party resources, one inline
 * stylesheet allowed by the Content-Security-Policy nonce.
 */
import type { Child } from 'hono/jsx';

export const STYLES = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6476;--bg:#f6f7f9;--card:#fff;--line:#d9dde5;--accent:#2957c8;--on-accent:#fff;--err:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e8ebf1;--muted:#a3abba;--bg:#12151b;--card:#1b2029;--line:#2e3542;--accent:#7ea2ff;--on-accent:#12151b;--err:#ff8a80}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:26rem;margin:3rem auto;padding:0 1rem}main.wide{max-width:48rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.75rem;padding:1.5rem;margin-bottom:1rem}
h1{font-size:1.5rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:0 0 .75rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;padding:.6rem .7rem;border:1px solid var(--line);border-radius:.5rem;background:transparent;color:inherit;font:inherit}
button,.button{display:block;width:100%;margin-top:1rem;padding:.65rem;border:0;border-radius:.5rem;background:var(--accent);color:var(--on-accent);font:inherit;font-weight:600;text-align:center;text-decoration:none;cursor:pointer}
.secondary{background:transparent;color:var(--accent);border:1px solid var(--accent)}
.providers{display:grid;gap:.5rem}.providers .button{margin:0}
.error{border:1px solid var(--err);color:var(--err);border-radius:.5rem;padding:.6rem .8rem;margin-bottom:1rem}
.spaced{margin-top:1.5rem}.muted{color:var(--muted);font-size:.9rem}
table{width:100%;border-collapse:collapse;font-size:.9rem}td,th{text-align:left;padding:.4rem;border-bottom:1px solid var(--line);vertical-align:top}
td form button{margin:0;padding:.3rem .6rem;width:auto;white-space:nowrap}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
`;

export function Layout(props: { title: string; nonce?: string; wide?: boolean; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{props.title}</title>
        <style nonce={props.nonce}>{STYLES}</style>
      </head>
      <body>
        <main class={props.wide ? 'wide' : undefined}>{props.children}</main>
      </body>
    </html>
  );
}

export function ErrorBox(props: { message?: string | null }) {
  if (!props.message) return null;
  return (
    <div class="error" role="alert" id="form-error">
      {props.message}
    </div>
  );
}
