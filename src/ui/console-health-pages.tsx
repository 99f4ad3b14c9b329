/**
 * The console's Health area (routes/console-health.ts): a summary of the last day, configuration
 * problems, signing keys, mail, the probes, rate-limit hits (requests the per-IP limiter refused,
 * per action; accounts the per-account back-off slowed), and the last day's sign-ins as a server-rendered SVG chart
 * (no script, no external resource; its colours are the palette's, through the stylesheet's
 * `.chart` rules, so it reads in the light and the dark scheme), with the same counts as a table.
 */
import { ConsolePage, Section, When, type ConsoleChrome } from './console-pages';

export interface ProblemView {
  id: string;
  title: string;
  detail: string;
}

export interface KeyView {
  kid: string;
  alg: string;
  /** The first key: it signs; the others only verify. */
  signs: boolean;
  createdAt: number | null;
  ageDays: number | null;
  due: boolean;
}

export interface ProbeView {
  name: string;
  ok: boolean;
  ms: number;
  error: string | null;
}

export interface HourCount {
  /** The hour's start, Unix seconds. */
  hour: number;
  succeeded: number;
  refused: number;
}

/** Requests the per-IP limiter refused for one action over the last day. */
export interface RateLimitHitView {
  action: string;
  hits: number;
  /** The binding that limits the action (its own, or the shared `RATE_LIMITER`); null: none, or not an action of this version. */
  binding: string | null;
}

export interface HealthPageProps extends ConsoleChrome {
  problems: ProblemView[];
  keys: KeyView[];
  rotationDays: number;
  mail: { configured: boolean; text: string };
  probes: ProbeView[];
  rateLimiter: boolean;
  /** Per-IP limiter refusals (429) over the last day, per action: every guarded action, counted or not. */
  rateLimitHits: RateLimitHitView[];
  /** `RATE_LIMIT_PERIOD`: the Retry-After of each refusal (the bindings' period). */
  rateLimitPeriod: number;
  /** `login_failure_burst` events over the last day: an account slowed after failed passwords. */
  bursts: number;
  /** The last 24 hours, oldest first. */
  hours: HourCount[];
}

const hourText = (hour: number) => `${new Date(hour * 1000).toISOString().slice(11, 13)}:00`;

/** The largest count rounded up to a round number, so the scale's ticks read well. */
function scaleTop(max: number): number {
  if (max <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= max) return m * step;
  return 10 * step;
}

const W = 720;
const H = 320;
const LEFT = 56;
const RIGHT = 8;
const TOP = 14;
const BOTTOM = 34;

/** Succeeded and refused sign-ins per hour as paired bars; `role=img` with a title and a description, the numbers in the table beside it. */
export function SignInChart(p: { hours: HourCount[] }) {
  const top = scaleTop(Math.max(0, ...p.hours.map((h) => Math.max(h.succeeded, h.refused))));
  const plotH = H - TOP - BOTTOM;
  const slot = (W - LEFT - RIGHT) / p.hours.length;
  const bar = Math.max(2, slot * 0.38);
  const y = (n: number) => TOP + plotH - (n / top) * plotH;
  const total = (k: 'succeeded' | 'refused') => p.hours.reduce((n, h) => n + h[k], 0);
  const first = p.hours[0];
  const last = p.hours[p.hours.length - 1];
  const span = first && last ? `${hourText(first.hour)} to ${hourText(last.hour)} UTC` : '';
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-labelledby="chart-title chart-desc" id="sign-in-chart">
      <title id="chart-title">Sign-ins per hour over the last 24 hours</title>
      <desc id="chart-desc">{`${total('succeeded')} succeeded and ${total('refused')} refused, hour by hour from ${span}; the table below gives each hour.`}</desc>
      {[0, top / 2, top].map((tick) => (
        <g>
          <line class="grid" x1={LEFT} x2={W - RIGHT} y1={y(tick)} y2={y(tick)} />
          <text class="label" x={LEFT - 6} y={y(tick) + 4} text-anchor="end">
            {String(tick)}
          </text>
        </g>
      ))}
      {p.hours.map((h, i) => {
        const x = LEFT + i * slot + (slot - 2 * bar) / 2;
        return (
          <g data-hour={String(h.hour)}>
            <rect class="ok" x={x} y={y(h.succeeded)} width={bar} height={y(0) - y(h.succeeded)} data-count={String(h.succeeded)}>
              <title>{`${hourText(h.hour)} UTC: ${h.succeeded} succeeded`}</title>
            </rect>
            <rect class="refused" x={x + bar} y={y(h.refused)} width={bar} height={y(0) - y(h.refused)} data-count={String(h.refused)}>
              <title>{`${hourText(h.hour)} UTC: ${h.refused} refused`}</title>
            </rect>
            {i % 6 === 0 && (
              <text class="label" x={LEFT + i * slot + slot / 2} y={H - 6} text-anchor="middle">
                {hourText(h.hour)}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
}

export function HealthPage(p: HealthPageProps) {
  const empty = p.hours.every((h) => h.succeeded === 0 && h.refused === 0);
  const sum = (k: 'succeeded' | 'refused') => p.hours.reduce((n, h) => n + h[k], 0);
  const limited = p.rateLimitHits.reduce((n, h) => n + h.hits, 0);
  return (
    <ConsolePage {...p} title="Health" area="health">
      <Section id="summary" title="Summary">
        <ul class="plain rows" id="summary-list">
          <li data-summary="problems">{`Configuration problems now: ${p.problems.length}`}</li>
          <li data-summary="sign-ins">{`Sign-ins in the last 24 hours: ${sum('succeeded')} succeeded, ${sum('refused')} refused`}</li>
          <li data-summary="rate-limited">{`Requests refused by the per-IP limiter (429) in the last 24 hours: at least ${limited}`}</li>
          <li data-summary="bursts">{`Accounts slowed after failed passwords in the last 24 hours: ${p.bursts}`}</li>
        </ul>
      </Section>

      <Section id="problems" title="Configuration">
        {p.problems.length === 0 ? (
          <p id="no-problems">No configuration problems found.</p>
        ) : (
          <ul class="plain rows" id="problem-list">
            {p.problems.map((problem) => (
              <li data-problem={problem.id}>
                <span class="tag warn">{problem.title}</span>
                <div>{problem.detail}</div>
              </li>
            ))}
          </ul>
        )}
      </Section>

      <Section id="keys" title="Signing keys">
        <p class="muted">{`The first key signs; every key verifies and is published. Rotate the signing key every ${p.rotationDays} days (README “Rotating signing keys”). A key’s age comes from its kid, which npm run keys:generate starts with the day it was made.`}</p>
        <table class="stack" id="key-list">
          <thead>
            <tr>
              <th scope="col">Key id (kid)</th>
              <th scope="col">Algorithm</th>
              <th scope="col">Use</th>
              <th scope="col">Age</th>
            </tr>
          </thead>
          <tbody>
            {p.keys.map((k) => (
              <tr data-kid={k.kid}>
                <td class="wrap">
                  <code>{k.kid}</code>
                </td>
                <td data-label="Algorithm">{k.alg}</td>
                <td data-label="Use">{k.signs ? 'signs and verifies' : 'verifies only'}</td>
                <td data-label="Age" class="key-age">
                  {k.ageDays === null ? 'unknown (the kid carries no date)' : `${k.ageDays} days`}
                  {k.createdAt !== null && (
                    <div class="muted">
                      made <When at={k.createdAt} />
                    </div>
                  )}
                  {k.due && <span class="tag warn">rotation due</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>

      <Section id="mail" title="Mail">
        <p id="mail-status" data-configured={p.mail.configured ? 'yes' : 'no'}>
          {p.mail.configured ? <span class="tag">configured</span> : <span class="tag warn">not configured</span>} {p.mail.text}
        </p>
      </Section>

      <Section id="probes" title="Storage reachability">
        <p class="muted">Checked now, each with a deadline of a few seconds.</p>
        <ul class="plain rows" id="probe-list">
          {p.probes.map((probe) => (
            <li data-probe={probe.name} data-ok={probe.ok ? 'yes' : 'no'}>
              <strong>{probe.name}</strong> {probe.ok ? <span class="tag">ok</span> : <span class="tag warn">failed</span>} <span class="muted">{`${probe.ms} ms`}</span>
              {probe.error && <div class="muted">{probe.error}</div>}
            </li>
          ))}
        </ul>
      </Section>

      <Section id="rate-limits" title="Rate limits">
        <p id="rate-limiter">{p.rateLimiter ? 'Per-IP burst limits are on (RATE_LIMITER).' : 'Per-IP burst limits are off: there is no RATE_LIMITER binding.'}</p>
        <h3>Requests refused by the per-IP limiter</h3>
        <p class="muted">{`Refusals (429) in the last 24 hours, per limited action. Each refused client is told to retry after ${p.rateLimitPeriod} s (RATE_LIMIT_PERIOD). The limits themselves are the bindings’ [[ratelimits]] in wrangler.toml, which the Worker cannot read. Counted at least this many: a Worker instance stopped before writing its last second of counts loses them.`}</p>
        <table class="stack" id="rate-limit-hits">
          <thead>
            <tr>
              <th scope="col">Action</th>
              <th scope="col">Refused</th>
              <th scope="col">Limited by</th>
            </tr>
          </thead>
          <tbody>
            {p.rateLimitHits.map((h) => (
              <tr data-action={h.action}>
                <td>
                  <code>{h.action}</code>
                </td>
                <td data-label="Refused" class="hits">
                  {String(h.hits)}
                </td>
                <td data-label="Limited by">{h.binding === null ? 'no binding' : <code>{h.binding}</code>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h3>Accounts slowed after failed passwords</h3>
        <p id="bursts">{`Times an account met a burst of failed sign-ins and the per-account back-off began (login_failure_burst) in the last 24 hours: ${p.bursts}. This back-off is per account, whatever the address: its refusals are not in the table above.`}</p>
      </Section>

      <Section id="sign-ins" title="Sign-ins over the last 24 hours">
        {empty && <p id="no-sign-ins">No sign-ins in the last 24 hours.</p>}
        <p class="chart legend" aria-hidden="true">
          <svg width="12" height="12">
            <rect class="ok" width="12" height="12" />
          </svg>{' '}
          succeeded{'  '}
          <svg width="12" height="12">
            <rect class="refused" width="12" height="12" />
          </svg>{' '}
          refused
        </p>
        <SignInChart hours={p.hours} />
        <details>
          <summary>The numbers, hour by hour</summary>
          <table class="stack" id="sign-in-table">
            <thead>
              <tr>
                <th scope="col">Hour (UTC)</th>
                <th scope="col">Succeeded</th>
                <th scope="col">Refused</th>
              </tr>
            </thead>
            <tbody>
              {p.hours.map((h) => (
                <tr data-hour={String(h.hour)}>
                  <td>
                    <When at={h.hour} />
                  </td>
                  <td data-label="Succeeded" class="succeeded">
                    {String(h.succeeded)}
                  </td>
                  <td data-label="Refused" class="refused">
                    {String(h.refused)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      </Section>
    </ConsolePage>
  );
}
