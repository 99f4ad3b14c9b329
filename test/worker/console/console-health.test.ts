/**
 * The console's Health area: configuration problems shown when present and only then, signing
 * keys with their ages (never their private parts), the mail transport (described, not tried),
 * KV and Durable Object probes (a binding that hangs or throws is shown as failed, the page still
 * answers), rate-limit hits, and the sign-in chart, whose numbers are the stored events'.
 */
import { env } from 'cloudflare:test';
import type { JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSigningJwk } from '../../../src/keys/generate-jwk';
import { PROBE_NAME } from '../../../src/storage/health';
import { STYLES } from '../../../src/ui/styles';
import type { TestEnv } from '../support/helpers';
import type { Jar } from '../support/second-factor-helpers';
import { ENCRYPTION_KEY } from '../support/second-factor-helpers';
import { adminWithSecondFactor, browse, consoleEnv, pageHtml } from './console-support';

const HEALTH = '/auth/admin/console/health';
const DAY = 86_400;
const HOUR = 3600;
const now = () => Math.floor(Date.now() / 1000);
const today = () => new Date().toISOString().slice(0, 10);

async function keyWithKid(alg: 'ES256' | 'EdDSA', kid: string): Promise<JWK> {
  return { ...(await generateSigningJwk(alg)), kid };
}

const problemsOf = (html: string) => [...html.matchAll(/data-problem="([a-z0-9_]+)"/g)].map((m) => m[1]);

async function healthPage(e: TestEnv, jar: Jar) {
  const r = await browse(e, jar, HEALTH);
  const html = await pageHtml(r);
  expect(r.status, html).toBe(200);
  return html;
}

describe('configuration problems', () => {
  it('a development, keyless, mail-less configuration without a rate limiter or a second factor required for admins: each named', async () => {
    const e = consoleEnv({ ENVIRONMENT: 'development', SIGNING_KEYS: undefined, SMTP_URL: undefined, EMAIL_VERIFICATION: 'off', RATE_LIMITER: undefined });
    const admin = await adminWithSecondFactor(e);
    const html = await healthPage(e, admin.jar);
    expect(problemsOf(html).sort()).toEqual(['admins_without_second_factor', 'development', 'generated_signing_key', 'no_mail', 'no_rate_limiter']);
    expect(html).toContain('Development settings on a public address');
    expect(html).toContain('PUBLIC_URL is https://gate.example.com: set ENVIRONMENT to &quot;production&quot;');
    expect(html).toContain('MFA_REQUIRED_ROLES does not list &quot;admin&quot;');
    expect(html).toMatch(/id="mail-status" data-configured="no"/);
    expect(html).toContain('Per-IP burst limits are off: there is no RATE_LIMITER binding.');
  });

  it('an old EdDSA signing key: rotation due and no ES256 key; nothing else', async () => {
    const e = consoleEnv({ SIGNING_KEYS: JSON.stringify({ keys: [await keyWithKid('EdDSA', '2020-01-01-0ldk3y00')] }), MFA_REQUIRED_ROLES: 'admin' });
    const admin = await adminWithSecondFactor(e);
    const html = await healthPage(e, admin.jar);
    expect(problemsOf(html).sort()).toEqual(['no_es256_key', 'signing_key_due']);
    const age = Math.floor((now() - Date.UTC(2020, 0, 1) / 1000) / DAY);
    expect(html).toContain(`The signing key 2020-01-01-0ldk3y00 is ${age} days old (rotate every 90 days)`);
    expect(html).toContain('rotation due');
  });

  it('a production configuration with mail, a fresh ES256 key, a rate limiter and a second factor required for admins: no problems', async () => {
    const e = consoleEnv({ SIGNING_KEYS: JSON.stringify({ keys: [await keyWithKid('ES256', `${today()}-fr35hk3y`)] }), MFA_REQUIRED_ROLES: 'admin' });
    const admin = await adminWithSecondFactor(e);
    const html = await healthPage(e, admin.jar);
    expect(problemsOf(html)).toEqual([]);
    expect(html).toContain('No configuration problems found.');
    expect(html).not.toContain('rotation due');
    expect(html).toMatch(/id="mail-status" data-configured="yes"/);
    expect(html).toContain('SMTP relay (SMTP_URL) at ');
  });
});

describe('signing keys and storage', () => {
  let e: TestEnv;
  let admin: { id: string; email: string; jar: Jar };
  let signing: JWK;
  let older: JWK;

  beforeAll(async () => {
    signing = await keyWithKid('ES256', `${today()}-s1gn1ng0`);
    older = await keyWithKid('EdDSA', '2025-06-01-v3r1fy00');
    const nameless = { ...(await generateSigningJwk('ES256')), kid: 'made-elsewhere' };
    e = consoleEnv({ SIGNING_KEYS: JSON.stringify({ keys: [signing, older, nameless] }) });
    admin = await adminWithSecondFactor(e);
  });

  it('lists each key with its kid, algorithm, use and age from its kid; never a private part', async () => {
    const html = await healthPage(e, admin.jar);
    const row = (kid: string) => {
      const start = html.indexOf(`<tr data-kid="${kid}">`);
      expect(start, kid).toBeGreaterThan(-1);
      return html.slice(start, html.indexOf('</tr>', start));
    };
    expect(row(signing.kid!)).toContain('ES256');
    expect(row(signing.kid!)).toContain('signs and verifies');
    expect(row(signing.kid!)).toContain('0 days');
    const olderAge = Math.floor((now() - Date.UTC(2025, 5, 1) / 1000) / DAY);
    expect(row(older.kid!)).toContain('EdDSA');
    expect(row(older.kid!)).toContain('verifies only');
    expect(row(older.kid!)).toContain(`${olderAge} days`);
    // Only the signing key is due for rotation: a verifying key is on its way out already.
    expect(row(older.kid!)).not.toContain('rotation due');
    expect(row('made-elsewhere')).toContain('unknown (the kid carries no date)');
    for (const key of [signing, older]) expect(html).not.toContain(key.d!);
  });

  it('probes KV and the sessions’ Durable Objects: ok with the time taken', async () => {
    const html = await healthPage(e, admin.jar);
    expect(html).toMatch(/data-probe="KV \(REVOKED\)" data-ok="yes"><strong>KV \(REVOKED\)<\/strong> <span class="tag">ok<\/span> <span class="muted">\d+ ms<\/span>/);
    expect(html).toMatch(/data-probe="Durable Objects \(USER_SESSIONS\)" data-ok="yes"/);
  });

  it('a KV namespace that hangs and a Durable Object namespace that throws are shown as failed, and the page answers within the deadline', async () => {
    const hangingKv = new Proxy(env.REVOKED, {
      get(target, name) {
        if (name === 'get') return (key: string, ...rest: unknown[]) => (key === PROBE_NAME ? new Promise(() => {}) : (target.get as (...a: unknown[]) => unknown)(key, ...rest));
        const value = Reflect.get(target, name) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const realSessions = env.USER_SESSIONS;
    const throwingSessions = {
      idFromName: (name: string) => {
        if (name === PROBE_NAME) throw new Error('Durable Object namespace unavailable');
        return realSessions.idFromName(name);
      },
      get: (id: DurableObjectId) => realSessions.get(id),
    };
    const broken = { ...e, REVOKED: hangingKv, USER_SESSIONS: throwingSessions } as TestEnv;
    const started = Date.now();
    const r = await browse(broken, admin.jar, HEALTH);
    const html = await pageHtml(r);
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(4500);
    expect(html).toMatch(/data-probe="KV \(REVOKED\)" data-ok="no">[^]*?failed[^]*?no answer within 2000 ms/);
    expect(html).toMatch(/data-probe="Durable Objects \(USER_SESSIONS\)" data-ok="no">[^]*?failed[^]*?Durable Object namespace unavailable/);
    // The rest of the page is all there.
    expect(html).toContain('id="sign-in-chart"');
    expect(html).toContain('id="key-list"');
  });
});

/** The chart's bars and the table's rows, by hour. */
function chartOf(html: string) {
  const bars = new Map<number, { succeeded: number; refused: number }>();
  for (const m of html.matchAll(/<g data-hour="(\d+)"><rect class="ok"[^>]*data-count="(\d+)"[^>]*>[^]*?<rect class="refused"[^>]*data-count="(\d+)"/g)) {
    bars.set(Number(m[1]), { succeeded: Number(m[2]), refused: Number(m[3]) });
  }
  const rows = new Map<number, { succeeded: number; refused: number }>();
  for (const m of html.matchAll(/<tr data-hour="(\d+)">[^]*?class="succeeded">(\d+)<\/td><td data-label="Refused" class="refused">(\d+)<\/td>/g)) {
    rows.set(Number(m[1]), { succeeded: Number(m[2]), refused: Number(m[3]) });
  }
  return { bars, rows };
}

describe('sign-ins over the last day', () => {
  let e: TestEnv;
  let admin: { id: string; email: string; jar: Jar };

  beforeAll(async () => {
    e = consoleEnv();
    admin = await adminWithSecondFactor(e);
  });

  it('an empty day: every hour at zero, said in words', async () => {
    await env.DB.prepare('DELETE FROM auth_events').run();
    const html = await healthPage(e, admin.jar);
    expect(html).toContain('No sign-ins in the last 24 hours.');
    const { bars, rows } = chartOf(html);
    expect(bars.size).toBe(24);
    expect(rows.size).toBe(24);
    expect([...rows.values()].every((r) => r.succeeded === 0 && r.refused === 0)).toBe(true);
    expect([...bars.values()].every((r) => r.succeeded === 0 && r.refused === 0)).toBe(true);
    expect(html).toContain('<desc id="chart-desc">0 succeeded and 0 refused');
  });

  it('counts each hour’s sign-ins as the stored events say, in the chart and in its table; older events and other events are left out', async () => {
    const thisHour = Math.floor(now() / HOUR) * HOUR;
    const at = (hoursAgo: number, minute = 10) => thisHour - hoursAgo * HOUR + minute * 60;
    const seed: [number, string, string][] = [
      ...Array.from({ length: 3 }, (): [number, string, string] => [at(2), 'login', 'success']),
      [at(2, 50), 'login', 'failure'],
      ...Array.from({ length: 7 }, (): [number, string, string] => [at(5), 'login', 'failure']),
      [at(5), 'oauth_login', 'failure'],
      [at(5), 'oauth_login', 'security'],
      [at(5), 'login_failure_burst', 'security'],
      [at(5), 'refresh', 'success'], // not a sign-in
      [at(23, 1), 'login', 'success'],
      [at(25), 'login', 'success'], // more than a day ago
    ];
    for (const [when, event, outcome] of seed) {
      await env.DB.prepare('INSERT INTO auth_events (at, event, outcome) VALUES (?, ?, ?)').bind(when, event, outcome).run();
    }
    const html = await healthPage(e, admin.jar);
    const { bars, rows } = chartOf(html);
    expect(rows.size).toBe(24);
    expect(bars).toEqual(rows);
    const hour = (hoursAgo: number) => rows.get(thisHour - hoursAgo * HOUR);
    expect(hour(2)).toEqual({ succeeded: 3, refused: 1 });
    expect(hour(5)).toEqual({ succeeded: 0, refused: 9 });
    expect(hour(23)).toEqual({ succeeded: 1, refused: 0 });
    expect(rows.has(thisHour - 25 * HOUR)).toBe(false);
    expect(hour(1)).toEqual({ succeeded: 0, refused: 0 });
    expect(html).not.toContain('No sign-ins in the last 24 hours.');
    expect(html).toContain('(login_failure_burst) in the last 24 hours: 1.');
    // The accessible alternative: the chart is an image with a title and a description that add up.
    const total = [...rows.values()].reduce((n, r) => ({ succeeded: n.succeeded + r.succeeded, refused: n.refused + r.refused }), { succeeded: 0, refused: 0 });
    expect(html).toContain(`<desc id="chart-desc">${total.succeeded} succeeded and ${total.refused} refused`);
    expect(html).toMatch(/<svg class="chart" viewBox="0 0 720 320" width="100%" role="img" aria-labelledby="chart-title chart-desc"/);
  });

  it('the chart is inline SVG: no script, no external resource, only the palette’s colours', async () => {
    const html = await healthPage(e, admin.jar);
    const start = html.indexOf('<svg class="chart"');
    const svg = html.slice(start, html.indexOf('</svg>', start) + 6);
    expect(svg).not.toMatch(/<script|href=|url\(|fill="#|stroke="#|style=/i);
    expect(STYLES).toMatch(/\.chart \.ok\{fill:var\(--link\)\}\.chart \.refused\{fill:var\(--err\)\}/);
    expect(STYLES).toMatch(/\.chart \.label\{fill:var\(--muted\)/);
  });
});

describe('no secret of the configuration on the console\'s pages', () => {
  it('the Health and Routes pages, and the explainer, show hosts and names only: no password, token, key or secret of any setting', async () => {
    const secrets = {
      smtp: 'Smtp-Pa55word-xyz',
      scim: 'scim-token-0123456789abcdefghijklmnopqrstuv',
      alert: 'Alert-T0ken-xyz',
      oidc: 'Oidc-Client-S3cret',
      signals: 'Signals-Bearer-S3cret-0123456789abcdefgh',
      notify: 'N0tify-T0ken-xyz',
    };
    const signing = await keyWithKid('ES256', `${today()}-s3cr3tk3y`);
    const e = consoleEnv({
      SMTP_URL: `smtps://mailer:${secrets.smtp}@smtp.example.com:465`,
      SCIM_TOKEN: secrets.scim,
      ALERT_WEBHOOK_URL: `https://hooks.example.com/alert?token=${secrets.alert}`,
      OIDC_ISSUER: 'https://idp.example.com',
      OIDC_CLIENT_ID: 'gatehouse',
      OIDC_CLIENT_SECRET: secrets.oidc,
      SHARED_SIGNALS: JSON.stringify([{ id: 'idp', issuer: 'https://idp.example.com', jwks_uri: 'https://idp.example.com/jwks', provider: 'oidc', authorization: secrets.signals }]),
      SIGNING_KEYS: JSON.stringify({ keys: [signing] }),
      ROUTES: JSON.stringify([{ path: '/app', origin: 'https://origin.example.com/base', auth: 'required', logout_notify: `https://origin.example.com/logout?token=${secrets.notify}` }]),
    });
    const admin = await adminWithSecondFactor(e);
    const pages = [
      await healthPage(e, admin.jar),
      await pageHtml(await browse(e, admin.jar, '/auth/admin/console/routes')),
      await pageHtml(await browse(e, admin.jar, `/auth/admin/console/routes/explain?${new URLSearchParams({ user: admin.email, url: '/app/x' })}`)),
    ];
    expect(pages[0]).toContain('SMTP relay (SMTP_URL) at smtp.example.com:465');
    for (const html of pages) {
      for (const secret of [...Object.values(secrets), signing.d!, ENCRYPTION_KEY]) expect(html).not.toContain(secret);
    }
  });
});
