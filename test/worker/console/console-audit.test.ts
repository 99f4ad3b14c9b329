/**
 * The console's Audit log area: events filtered by user (address or id), event name, outcome
 * and time range, newest first, 50 a page, security events marked; the filtered result exported
 * as NDJSON and as CSV (an attachment, parsed back here; a cell a spreadsheet would take for a
 * formula is quoted with '), bounded and audited with the acting admin. Bad input gets a clear
 * 400 page.
 */
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { seedUser, type TestEnv } from '../support/helpers';
import type { Jar } from '../support/second-factor-helpers';
import { adminWithSecondFactor, auditRows, browse, consoleEnv, pageHtml, plainSession } from './console-support';

const AUDIT = '/auth/admin/console/audit';

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };
let tagCount = 0;

beforeAll(async () => {
  e = consoleEnv();
  admin = await adminWithSecondFactor(e);
});

/** An event name no other test records. */
const freshEvent = () => `test_event_${Date.now().toString(36)}_${tagCount++}`;

interface Seeded {
  at: number;
  event: string;
  outcome: 'success' | 'failure' | 'security';
  userId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  detail?: Record<string, unknown> | null;
}

async function seedEvents(events: Seeded[]) {
  await env.DB.batch(
    events.map((x) =>
      env.DB.prepare('INSERT INTO auth_events (at, event, outcome, user_id, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)').bind(
        x.at, x.event, x.outcome, x.userId ?? null, x.ip ?? null, x.userAgent ?? null, x.detail ? JSON.stringify(x.detail) : null,
      ),
    ),
  );
}

const rowsOn = (html: string) => [...html.matchAll(/<tr data-event="([^"]+)" data-outcome="([^"]+)"/g)].map((m) => ({ event: m[1]!, outcome: m[2]! }));
const iso = (at: number) => new Date(at * 1000).toISOString();

/** RFC 4180: records of fields, quoted fields with doubled quotes and line breaks inside. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += ch;
  }
  expect(field === '' && record.length === 0, 'the file ends with a whole record').toBe(true);
  return records;
}

describe('the Audit log area: filters and pages', () => {
  it('filters by user (address or id), event, outcome and time range, newest first, and marks security events', async () => {
    const u = await seedUser();
    const other = await seedUser();
    const name = freshEvent();
    const t0 = Date.UTC(2026, 5, 1, 12, 0) / 1000;
    await seedEvents([
      { at: t0, event: name, outcome: 'success', userId: u.id, ip: '198.51.100.1' },
      { at: t0 + 3600, event: name, outcome: 'failure', userId: u.id },
      { at: t0 + 86_400, event: name, outcome: 'security', userId: u.id, detail: { reason: 'replayed' } },
      { at: t0 + 7200, event: name, outcome: 'success', userId: other.id },
    ]);
    const byEmail = await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&user=${encodeURIComponent(u.email)}`));
    expect(rowsOn(byEmail)).toEqual([
      { event: name, outcome: 'security' },
      { event: name, outcome: 'failure' },
      { event: name, outcome: 'success' },
    ]);
    // The security event is marked: its row and the tag.
    expect(byEmail).toContain(`<tr data-event="${name}" data-outcome="security" class="security">`);
    expect(byEmail).toContain('<span class="tag warn">security</span>');
    expect(byEmail).toContain('{&quot;reason&quot;:&quot;replayed&quot;}');
    expect(byEmail).toContain(`href="/auth/admin/console/users/${u.id}">${u.email}</a>`);

    expect(rowsOn(await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&user=${u.id}`))).length).toBe(3);
    expect(rowsOn(await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}`))).length).toBe(4);
    expect(rowsOn(await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&outcome=security`)))).toEqual([{ event: name, outcome: 'security' }]);
    // From is included, "to" includes the minute (or day) it names.
    expect(rowsOn(await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&from=2026-06-01T13:00&to=2026-06-01T14:00`))).map((r) => r.outcome)).toEqual(['success', 'failure']);
    expect(rowsOn(await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&to=2026-06-01`))).length).toBe(3);
    expect(rowsOn(await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&from=2026-06-02`))).length).toBe(1);
    // The filters travel with the export links.
    expect(byEmail).toContain(`href="${AUDIT}?user=${encodeURIComponent(u.email)}&amp;event=${name}&amp;export=csv"`);

    const nobody = await pageHtml(await browse(e, admin.jar, `${AUDIT}?user=nobody%40example.com`));
    expect(nobody).toContain('No account has this address.');
    expect(rowsOn(nobody)).toEqual([]);
  });

  it('finds the events of a deleted account by its id', async () => {
    const name = freshEvent();
    await seedEvents([{ at: Math.floor(Date.now() / 1000), event: name, outcome: 'success', userId: 'usr_longgone' }]);
    const html = await pageHtml(await browse(e, admin.jar, `${AUDIT}?user=usr_longgone`));
    expect(rowsOn(html)).toEqual([{ event: name, outcome: 'success' }]);
  });

  it('pages 50 events at a time, newest first, keeping the filters in the links', async () => {
    const name = freshEvent();
    const t0 = Math.floor(Date.now() / 1000) - 1000;
    await seedEvents(Array.from({ length: 51 }, (_, i) => ({ at: t0 + i, event: name, outcome: 'success' as const, detail: { n: i } })));
    const first = await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}`));
    expect(rowsOn(first)).toHaveLength(50);
    expect(first.indexOf('{&quot;n&quot;:50}')).toBeLessThan(first.indexOf('{&quot;n&quot;:49}'));
    expect(first).not.toContain('{&quot;n&quot;:0}');
    expect(first).toContain(`href="${AUDIT}?event=${name}&amp;page=2"`);
    const second = await pageHtml(await browse(e, admin.jar, `${AUDIT}?event=${name}&page=2`));
    expect(rowsOn(second)).toHaveLength(1);
    expect(second).toContain('{&quot;n&quot;:0}');
    expect(second).toContain(`href="${AUDIT}?event=${name}&amp;page=1"`);
    expect(second).not.toContain('rel="next"');
  });

  it('answers bad filters with a clear 400 page', async () => {
    const cases: [string, string][] = [
      ['from=2026-13-01', 'must be a date'],
      ['to=2026-02-30', 'must be a date'],
      ['from=last%20week', 'must be a date'],
      ['from=2026-06-02&to=2026-06-01', 'must be after'],
      ['event=Login!', 'must be an event name'],
      [`event=${'e'.repeat(65)}`, 'must be an event name'],
      ['event=never_recorded_anywhere', 'no event named “never_recorded_anywhere” is in the audit log'],
      ['outcome=maybe', 'must be success, failure or security'],
      [`user=${'u'.repeat(255)}`, 'is too long'],
      ['page=0', 'must be a page number'],
      ['page=401', 'must be at most 400'],
      ['export=xlsx', 'must be ndjson or csv'],
    ];
    for (const [query, message] of cases) {
      const r = await browse(e, admin.jar, `${AUDIT}?${query}`);
      expect(r.status, query).toBe(400);
      expect(await pageHtml(r), query).toContain(message);
    }
  });
});

describe('the Audit log area: export', () => {
  it('exports the filtered events as NDJSON, an attachment, newest first, audited with the admin', async () => {
    const u = await seedUser();
    const name = freshEvent();
    const t0 = Date.UTC(2026, 6, 1) / 1000;
    await seedEvents([
      { at: t0, event: name, outcome: 'success', userId: u.id, ip: '198.51.100.9', userAgent: 'curl/8', detail: { a: 1 } },
      { at: t0 + 60, event: name, outcome: 'security', userId: u.id },
      { at: t0 + 120, event: name, outcome: 'failure', userId: null },
    ]);
    const r = await browse(e, admin.jar, `${AUDIT}?event=${name}&user=${u.id}&export=ndjson`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="gatehouse-audit-[0-9T-]+\.ndjson"$/);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('gatehouse-export-events')).toBe('2');
    const text = await r.text();
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { id: expect.any(Number), at: iso(t0 + 60), event: name, outcome: 'security', user_id: u.id, ip: null, user_agent: null, detail: null },
      { id: expect.any(Number), at: iso(t0), event: name, outcome: 'success', user_id: u.id, ip: '198.51.100.9', user_agent: 'curl/8', detail: { a: 1 } },
    ]);
    const audited = (await auditRows('admin_audit_exported', admin.id)).find((d) => (d.filter as Record<string, unknown>).event === name);
    expect(audited).toEqual({ admin: admin.id, format: 'ndjson', events: 2, truncated: false, filter: { userId: u.id, event: name } });
  });

  it('exports CSV with a header, proper quoting, and a leading quote on any cell a spreadsheet would take for a formula', async () => {
    const name = freshEvent();
    const t0 = Date.UTC(2026, 7, 1) / 1000;
    const nasty = { note: 'a "quoted", two-line\nvalue' };
    await seedEvents([
      { at: t0, event: name, outcome: 'failure', userId: '=HYPERLINK("http://evil.example","x")', ip: '+1', userAgent: '@SUM(A1:A9)', detail: nasty },
      { at: t0 + 1, event: name, outcome: 'success', userId: '-2+3', userAgent: '\tcmd', detail: null },
      { at: t0 + 2, event: name, outcome: 'success', userId: 'usr_plain', userAgent: 'Mozilla/5.0 (X11, Linux)' },
    ]);
    const r = await browse(e, admin.jar, `${AUDIT}?event=${name}&export=csv`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="gatehouse-audit-[0-9T-]+\.csv"$/);
    const [header, ...records] = parseCsv(await r.text());
    expect(header).toEqual(['id', 'at', 'event', 'outcome', 'user_id', 'ip', 'user_agent', 'detail']);
    expect(records.map((x) => x.slice(1))).toEqual([
      [iso(t0 + 2), name, 'success', 'usr_plain', '', 'Mozilla/5.0 (X11, Linux)', ''],
      [iso(t0 + 1), name, 'success', "'-2+3", '', "'\tcmd", ''],
      [iso(t0), name, 'failure', `'=HYPERLINK("http://evil.example","x")`, "'+1", "'@SUM(A1:A9)", JSON.stringify(nasty)],
    ]);
    // Every field that is not a number starts with no formula character.
    for (const field of records.flat()) expect(/^[=+\-@\t\r]/.test(field), field).toBe(false);
    expect((await auditRows('admin_audit_exported', admin.id)).some((d) => d.format === 'csv' && d.events === 3)).toBe(true);
  });

  it('holds at most the newest 10,000 events, and says when it cut', async () => {
    const name = freshEvent();
    const t0 = Date.UTC(2026, 8, 1) / 1000;
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
       INSERT INTO auth_events (at, event, outcome, detail) SELECT ?1 + i, ?2, 'success', json_object('n', i) FROM n`,
    ).bind(t0, name).run();
    const r = await browse(e, admin.jar, `${AUDIT}?event=${name}&export=ndjson`);
    expect(r.headers.get('gatehouse-export-events')).toBe('10000');
    expect(r.headers.get('gatehouse-export-truncated')).toBe('true');
    const lines = (await r.text()).trimEnd().split('\n');
    expect(lines).toHaveLength(10_000);
    expect((JSON.parse(lines[0]!) as { detail: { n: number } }).detail.n).toBe(10_000);
    expect((JSON.parse(lines[9_999]!) as { detail: { n: number } }).detail.n).toBe(1);
    expect((await auditRows('admin_audit_exported', admin.id)).some((d) => d.events === 10_000 && d.truncated === true)).toBe(true);
  });

  it('is the console’s: a non-admin gets a 403 page and no file', async () => {
    const someone = await plainSession(e, false);
    const r = await browse(e, someone.jar, `${AUDIT}?export=csv`);
    expect(r.status).toBe(403);
    expect(r.headers.get('content-disposition')).toBeNull();
    expect(await auditRows('admin_audit_exported', someone.id)).toEqual([]);
  });
});
