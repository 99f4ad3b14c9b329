/**
 * The console's Health area, mounted at `{AUTH_PREFIX}/admin/console/health` behind the console's
 * guard (routes/console.ts):
 *
 * - `GET /`   configuration problems, signing keys and their ages, the mail transport, the
 *             reachability of KV and the sessions' Durable Objects, rate-limit hits, and the last
 *             day's sign-ins per hour as a chart
 *
 * Nothing is sent and nothing changes: the mail transport is described, not tried. The probes
 * run on every load, at once, each under {@link PROBE_DEADLINE_MS}: a binding that hangs or
 * throws is shown as failed, and the page answers all the same.
 */
import { Hono, type Context } from 'hono';
import { KEY_ROTATION_DAYS, keyAgeDays, keyCreatedAt, operatingProblems } from '../config/operating-problems';
import type { AppEnv } from '../env';
import { limiterBindingOf, RATE_LIMITED_ACTIONS } from '../middleware/rate-limit';
import { newDeadline, withDeadline } from '../providers/http';
import { probeKv, probeSessionsObject, signInsByHour } from '../storage/health';
import { rateLimitHitsSince } from '../storage/rate-limit-hits';
import { HealthPage, type KeyView, type ProbeView, type RateLimitHitView } from '../ui/console-health-pages';
import { renderPage } from '../ui/render';
import { nowSeconds } from '../util/time';
import { consoleChrome } from './console-kit';

/** How long a probe may take before it counts as failed: far above a healthy answer (a few ms), far below a visitor's patience. */
export const PROBE_DEADLINE_MS = 2000;

const HOUR = 3600;
/** The chart's hours: this one and the 23 before it. */
const HOURS = 24;

async function probe(name: string, what: string, work: () => Promise<void>): Promise<ProbeView> {
  const started = Date.now();
  try {
    await withDeadline(work(), what, newDeadline(PROBE_DEADLINE_MS));
    return { name, ok: true, ms: Date.now() - started, error: null };
  } catch (e) {
    const timedOut = Date.now() - started >= PROBE_DEADLINE_MS;
    return { name, ok: false, ms: Date.now() - started, error: timedOut ? `no answer within ${PROBE_DEADLINE_MS} ms` : e instanceof Error ? e.message.slice(0, 200) : 'failed' };
  }
}

function mailView(c: Context<AppEnv>): { configured: boolean; text: string } {
  const config = c.get('config');
  if (config.mailTransport === 'smtp') {
    const smtp = config.SMTP_URL;
    return { configured: true, text: `SMTP relay (SMTP_URL)${smtp ? ` at ${smtp.host}:${smtp.port}` : ''}, sending as ${config.mailFrom.email}. Not tried from here: no mail is sent to show this page.` };
  }
  if (config.mailTransport === 'email-service') return { configured: true, text: `Cloudflare Email Service (the EMAIL binding), sending as ${config.mailFrom.email}. Not tried from here: no mail is sent to show this page.` };
  return { configured: false, text: 'None: neither SMTP_URL nor an EMAIL binding is configured, so the gateway sends no mail.' };
}

export const consoleHealthRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const config = c.get('config');
  const keyring = c.get('keyring');
  const now = nowSeconds();
  const firstHour = (Math.floor(now / HOUR) - (HOURS - 1)) * HOUR;
  const [probes, counted, limited] = await Promise.all([
    Promise.all([
      probe('KV (REVOKED)', 'KV', () => probeKv(c.env.REVOKED)),
      probe('Durable Objects (USER_SESSIONS)', 'The sessions object', () => probeSessionsObject(c.env.USER_SESSIONS, now)),
    ]),
    signInsByHour(c.env.DB, firstHour, now + 1),
    rateLimitHitsSince(c.env.DB, firstHour),
  ]);
  // Every guarded action, refused or not, then any other the table holds (an action of an earlier version).
  const hitsOf = new Map(limited.map((h) => [h.action, h.hits]));
  const known: readonly string[] = RATE_LIMITED_ACTIONS;
  const rateLimitHits: RateLimitHitView[] = [
    ...RATE_LIMITED_ACTIONS.map((action) => ({ action, hits: hitsOf.get(action) ?? 0, binding: limiterBindingOf(c.env, action) })),
    ...limited.filter((h) => !known.includes(h.action)).map((h) => ({ action: h.action, hits: h.hits, binding: null })),
  ].sort((a, b) => b.hits - a.hits);
  const byHour = new Map(counted.map((h) => [h.hour, h]));
  const hours = Array.from({ length: HOURS }, (_, i) => {
    const hour = firstHour + i * HOUR;
    const h = byHour.get(hour);
    return { hour, succeeded: h?.succeeded ?? 0, refused: h?.refused ?? 0 };
  });
  const keys: KeyView[] = [...keyring.byKid.values()].map((k) => {
    const age = keyAgeDays(k.kid, now);
    return { kid: k.kid, alg: k.alg, signs: k === keyring.active, createdAt: keyCreatedAt(k.kid), ageDays: age, due: k === keyring.active && age !== null && age > KEY_ROTATION_DAYS };
  });
  const problems = operatingProblems(config, {
    signingKey: { kid: keyring.active.kid, alg: keyring.active.alg },
    hasEs256: keyring.algorithms.includes('ES256'),
    rateLimiter: c.env.RATE_LIMITER !== undefined,
    now,
  });
  return renderPage(c, (nonce, brand) =>
    HealthPage({
      ...consoleChrome(c, nonce, brand),
      problems,
      keys,
      rotationDays: KEY_ROTATION_DAYS,
      mail: mailView(c),
      probes,
      rateLimiter: c.env.RATE_LIMITER !== undefined,
      rateLimitHits,
      rateLimitPeriod: config.RATE_LIMIT_PERIOD,
      bursts: counted.reduce((n, h) => n + h.bursts, 0),
      hours,
    }),
  );
});
