/**
 * The one stylesheet of Gatehouse's pages, sent inline under the page's CSP nonce, and the
 * few rules an app's accent colour (`APP_ACCENT`) adds to it. Colours are custom properties
 * per scheme so that test/worker/pages/contrast.test.ts can check every text/background pair.
 */
import { HEX_COLOUR, contrastRatio, textOn } from '../util/contrast';

/** The light palette. `link` is the accent as text (links, secondary buttons, focus rings). */
export const LIGHT = {
  fg: '#1d2330',
  muted: '#5b6476',
  bg: '#f3f4f7',
  card: '#ffffff',
  line: '#d9dde5',
  field: '#7a8394',
  accent: '#2957c8',
  'on-accent': '#ffffff',
  link: '#2957c8',
  err: '#b3261e',
  'err-bg': '#fdeeec',
  ok: '#1e6b3a',
  'ok-bg': '#e9f6ee',
} as const;

/** The dark palette (`prefers-color-scheme: dark`). */
export const DARK = {
  fg: '#e8ebf1',
  muted: '#a3abba',
  bg: '#12151b',
  card: '#1b2029',
  line: '#2e3542',
  field: '#7b8496',
  accent: '#7ea2ff',
  'on-accent': '#12151b',
  link: '#8fb0ff',
  err: '#ff8a80',
  'err-bg': '#33191a',
  ok: '#7ddc9b',
  'ok-bg': '#15291d',
} as const;

type Palette = Record<keyof typeof LIGHT, string>;

const vars = (p: Palette) =>
  Object.entries(p)
    .map(([k, v]) => `--${k}:${v}`)
    .join(';');

export const STYLES = `
:root{color-scheme:light dark;${vars(LIGHT)}}
@media (prefers-color-scheme:dark){:root{${vars(DARK)}}}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
.shell{min-height:100vh;display:flex;flex-direction:column;align-items:center;padding:1.5rem 1rem 3rem}
.brand{display:flex;align-items:center;gap:.6rem;margin:1rem 0 1.5rem;font-weight:700;font-size:1.15rem;overflow-wrap:anywhere}
.brand img{height:2.25rem;width:auto;max-width:10rem}
main{width:100%;max-width:26rem}main.wide{max-width:48rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.9rem;padding:1.75rem 1.5rem;margin-bottom:1rem}
@media (max-width:30rem){.shell{padding-top:.5rem}.card{padding:1.25rem 1rem}
#sessions thead{display:none}#sessions tr,#sessions td{display:block}#sessions tr{padding:.5rem 0;border-bottom:1px solid var(--line)}#sessions td{border:0;padding:.15rem 0}#sessions td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1.25rem}.lede{color:var(--muted);margin:-1rem 0 1.25rem;overflow-wrap:anywhere}h2{font-size:1.1rem;margin:0 0 .75rem}
a{color:var(--link)}
.field{margin-top:1rem}.field-head{display:flex;justify-content:space-between;align-items:baseline;gap:1rem}
label{display:block;font-weight:600;margin:0 0 .3rem}
input,textarea,select{width:100%;min-width:0;padding:.6rem .7rem;border:1px solid var(--field);border-radius:.5rem;background:var(--card);color:inherit;font:inherit}
input[aria-invalid=true],textarea[aria-invalid=true],select[aria-invalid=true]{border-color:var(--err)}
.hint{color:var(--muted);font-size:.875rem;margin:.3rem 0 0}
.field-error{color:var(--err);font-size:.875rem;font-weight:600;margin:.3rem 0 0}
.reveal-row{display:flex;gap:.5rem}.reveal-row input{flex:1}
button,.button{display:block;width:100%;margin-top:1.25rem;padding:.7rem 1rem;border:1px solid transparent;border-radius:.55rem;background:var(--accent);color:var(--on-accent);font:inherit;font-weight:600;line-height:1.4;text-align:center;text-decoration:none;cursor:pointer}
.secondary{background:transparent;color:var(--link);border-color:var(--field)}
.danger{background:transparent;color:var(--err);border-color:var(--err)}
button.reveal{width:auto;flex:none;margin:0;padding:0 .9rem;font-weight:600}
.providers{display:grid;gap:.6rem}.providers .button{margin:0}
.divider{display:flex;align-items:center;gap:.75rem;color:var(--muted);font-size:.875rem;margin:1.5rem 0 .25rem}
.divider::before,.divider::after{content:"";flex:1;border-top:1px solid var(--line)}
.error{background:var(--err-bg);border:1px solid var(--err);color:var(--err);border-radius:.55rem;padding:.7rem .9rem;margin:0 0 1rem}
.banner{background:var(--ok-bg);border:1px solid var(--ok);color:var(--fg);border-radius:.55rem;padding:.7rem .9rem;margin:0 0 1rem;overflow-wrap:anywhere}
.switch{text-align:center;color:var(--muted);margin:1.25rem 0 0}
.back{display:inline-block;margin:.25rem 0 1rem}.switch .back{margin:0}
.muted{color:var(--muted);font-size:.9rem}
ol.codes{font:600 1rem/1.8 ui-monospace,monospace;white-space:nowrap;border:1px solid var(--line);border-radius:.55rem;padding:.75rem .75rem .75rem 2.75rem;margin:1rem 0}
.actions{display:flex;flex-wrap:wrap;gap:.6rem}.actions>*{flex:1 1 8rem;width:auto;margin:0}
.check{display:flex;gap:.6rem;align-items:flex-start;margin-top:1.25rem}.check input{width:1.25rem;height:1.25rem;flex:none;margin:.15rem 0 0}.check label{margin:0}
table{width:100%;border-collapse:collapse;font-size:.9rem}td,th{text-align:left;padding:.4rem;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:break-word}#profile-email{overflow-wrap:anywhere}
td form button{margin:0;padding:.3rem .6rem;width:auto;white-space:nowrap}
h3{font-size:1rem;margin:0 0 .5rem}table+h3{margin-top:1.25rem}.sub{border-top:1px solid var(--line);margin-top:1.5rem;padding-top:1.25rem}.card>h2+.sub{border-top:0;margin-top:0;padding-top:0}
.sub>form{max-width:28rem}.sub p{margin:.5rem 0}.wide .button,.wide button{width:auto;display:inline-block}
.danger-zone{border-color:var(--err)}.toc{display:flex;flex-wrap:wrap;gap:.35rem 1.25rem;margin:0 0 1.25rem}
:focus-visible{outline:3px solid var(--link);outline-offset:2px}
.console-nav{display:flex;flex-wrap:wrap;gap:.35rem 1.25rem;margin:0 0 1rem;padding:0 0 .6rem;border-bottom:1px solid var(--line)}.console-nav a[aria-current=page]{font-weight:700;color:var(--fg)}
ul.plain{list-style:none;padding:0;margin:0}.rows>li{padding:.4rem 0;border-bottom:1px solid var(--line);overflow-wrap:anywhere}.rows>li:last-child{border-bottom:0}
.rows form{display:inline-block;margin-left:.75rem}.rows form button{margin:0;padding:.25rem .6rem}
.area-list{display:grid;gap:1rem}.area-list .card{margin:0}.area-list h2{margin:0 0 .4rem}
.search-row{display:flex;flex-wrap:wrap;align-items:flex-end;gap:0 .75rem}.search-row .field{flex:1 1 14rem}.wide .search-row button{margin-top:1rem}
.tag{display:inline-block;font-size:.8rem;font-weight:600;padding:0 .45rem;margin-left:.3rem;border:1px solid var(--field);border-radius:.4rem;color:var(--fg)}.tag.warn{color:var(--err);background:var(--err-bg);border-color:var(--err)}
.console h1,.console h2{overflow-wrap:anywhere}.pager{display:flex;justify-content:space-between;align-items:center;margin-top:1rem}.wrap,.user-link{overflow-wrap:anywhere}
fieldset{border:0;padding:0;margin:1rem 0 0;min-width:0}legend{font-weight:600;padding:0}fieldset .check{margin-top:.4rem}.secret{font:600 1rem/1.6 ui-monospace,monospace;overflow-wrap:anywhere;border:1px solid var(--line);border-radius:.55rem;padding:.75rem;margin:1rem 0}
.toc a[aria-current=page]{font-weight:700;color:var(--fg)}#client-actions>form,#token-actions>form{flex:0 0 auto}#client-actions button,#token-actions button{margin:0}
#confirm li{overflow-wrap:anywhere}#confirm .actions{margin-top:1rem}#confirm .actions form button{margin:0;width:100%}
.console input[type=checkbox]{width:1.25rem;height:1.25rem;padding:0;margin:.15rem 0 0}.console select{width:100%;padding:.6rem .7rem;border:1px solid var(--field);border-radius:.5rem;background:var(--card);color:inherit;font:inherit}.console td>button{margin:0;padding:.3rem .6rem;width:auto;white-space:nowrap}.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}tr.security>td:first-child{box-shadow:inset 3px 0 0 var(--err);padding-left:.6rem}.console td.nowrap{white-space:nowrap}
#user-actions>form{flex:0 0 auto}#user-actions button{margin:0}#sign-in h3{margin-top:1.25rem}
@media (max-width:30rem){#user-actions>form{flex:1 1 100%}.wide #user-actions button{width:100%}}
@media (max-width:30rem){table.stack thead{display:none}table.stack tr,table.stack td{display:block}table.stack tr{padding:.5rem 0;border-bottom:1px solid var(--line)}table.stack td{border:0;padding:.15rem 0}table.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}}
.chart{display:block;width:100%;height:auto;margin:.5rem 0}.chart .ok{fill:var(--link)}.chart .refused{fill:var(--err)}.chart .grid{stroke:var(--line)}.chart .label{fill:var(--muted);font-size:13px}.legend{font-size:.875rem}.legend svg{margin-left:.6rem}.legend svg:first-child{margin-left:0}@media (max-width:30rem){.chart .label{font-size:26px}}.route table{margin-bottom:.5rem}.rules code{margin-right:.35rem}
`;

/** The accent as link text in a scheme: itself where it is readable on the card and page background, else the default. */
function linkColour(accent: string, p: Palette): string {
  return Math.min(contrastRatio(accent, p.card), contrastRatio(accent, p.bg)) >= 4.5 ? accent : p.link;
}

/**
 * The rules that apply an app's accent (`#rrggbb`) on top of {@link STYLES}: the primary
 * button takes the accent with black or white text (whichever contrasts more, always at least
 * 4.5:1); links keep the default colour in a scheme where the accent would not be readable.
 * Anything but a `#rrggbb` colour adds nothing (config refuses it earlier; this keeps a stray
 * value from ever reaching the stylesheet).
 *
 * @example
 * accentStyles('#ffd400'); // ":root{--accent:#ffd400;--on-accent:#000000;--link:#2957c8}@media ..."
 */
export function accentStyles(accent: string | undefined): string {
  if (!accent || !HEX_COLOUR.test(accent)) return '';
  const a = accent.toLowerCase();
  const rule = (p: Palette) => `:root{--accent:${a};--on-accent:${textOn(a)};--link:${linkColour(a, p)}}`;
  return `${rule(LIGHT)}@media (prefers-color-scheme:dark){${rule(DARK)}}`;
}
