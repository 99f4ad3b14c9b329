/**
 * Sessions remember where they were started: the country the Cloudflare edge gave the sign-in
 * request (`request.cf.country`, never a header), kept only when shaped as a code (two capital
 * letters, or `T1` for Tor), else unknown. The account page, the console's user view and
 * Sessions list show it as a name with its code ("Germany (DE)", from the runtime's
 * `Intl.DisplayNames`), the JSON listings as `country`; a refresh or a step-up from elsewhere
 * keeps it; the Sessions list filters by it (ASCII codes only); an
 * object made by an earlier version gains the column and shows its sessions' place as unknown.
 */
import { createExecutionContext, env as testEnv, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import worker, { UserSessions } from '../../../src/index';
import { randomId, sha256 } from '../../../src/util/random';
import { adminWithSecondFactor, browse, consoleEnv, pageHtml } from '../console/console-support';
import { call, GOOD_PASSWORD, PUBLIC_URL, seedUser, setCookies, type TestEnv } from '../support/helpers';
import type { Jar } from '../support/second-factor-helpers';
import { sessionRow, sessionsObject } from '../support/user-sessions-store';

const USERS = '/auth/admin/console/users';
const SESSIONS = '/auth/admin/console/sessions';

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  e = consoleEnv();
  admin = await adminWithSecondFactor(e);
});

/**
 * A cookie-mode password sign-in as the edge hands it over: `cf` is the edge's request.cf
 * (undefined: none, as outside Cloudflare); `headers` are the client's own.
 */
async function signInFrom(email: string, cf: Record<string, unknown> | undefined, headers: Record<string, string> = {}): Promise<{ sid: string; jar: Jar }> {
  const request = new Request(new URL('/auth/login', PUBLIC_URL), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': '203.0.113.7', ...headers },
    body: JSON.stringify({ email, password: GOOD_PASSWORD, session: 'cookie' }),
    redirect: 'manual',
    cf,
  });
  const ctx = createExecutionContext();
  const r = await worker.fetch(request, e as never, ctx);
  await waitOnExecutionContext(ctx);
  expect(r.status, await r.clone().text()).toBe(200);
  const set = setCookies(r);
  const access = set.get('__Host-gatehouse')!.value;
  return {
    sid: decodeJwt<{ sid: string }>(access).sid,
    jar: { '__Host-gatehouse': access, '__Secure-gatehouse-refresh': set.get('__Secure-gatehouse-refresh')!.value },
  };
}

/** A cookie-authenticated JSON post from the gateway's own page, as the edge hands it over from `cf`. */
async function postFrom(path: string, jar: Jar, cf: Record<string, unknown>, body: unknown): Promise<Response> {
  const request = new Request(new URL(path, PUBLIC_URL), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'cf-connecting-ip': '198.51.100.9',
      origin: PUBLIC_URL,
      cookie: Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; '),
    },
    body: JSON.stringify(body),
    redirect: 'manual',
    cf,
  });
  const ctx = createExecutionContext();
  const r = await worker.fetch(request, e as never, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

const storedCountry = async (userId: string, sid: string) => (await sessionRow<{ country: string | null }>('SELECT country FROM sessions WHERE id = ?', [sid], userId))!.country;

/** The text of a session row's place on a page (every page marks it `class="place"`). */
function placeOn(html: string, rowAttr: string): string | null {
  const row = new RegExp(`<tr data-session="${rowAttr}">([\\s\\S]*?)</tr>`).exec(html)?.[1];
  return row === undefined ? null : (/<div class="place">([^<]*)<\/div>/.exec(row)?.[1] ?? null);
}

describe('where a session was started', () => {
  it('keeps the country the edge gave the sign-in and shows it as "Germany (DE)" on the account page, the console and in the JSON listings', async () => {
    const u = await seedUser();
    const { sid, jar } = await signInFrom(u.email, { country: 'DE' });
    expect(await storedCountry(u.id, sid)).toBe('DE');

    // The user's own page: the point is that they can spot a place they have never been.
    const account = await browse(e, jar, '/auth/account');
    expect(account.status).toBe(200);
    expect(placeOn(await pageHtml(account), sid)).toBe('Germany (DE)');
    const own = await call('/auth/sessions', { env: e, cookies: jar, headers: { accept: 'application/json' } });
    expect(own.status).toBe(200);
    expect(((await own.json()) as { sessions: { id: string; country: string | null }[] }).sessions.find((s) => s.id === sid)?.country).toBe('DE');

    // The console's user view and Sessions list.
    const view = await pageHtml(await browse(e, admin.jar, `${USERS}/${u.id}`));
    expect(placeOn(view, sid)).toBe('Germany (DE)');
    const list = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}`));
    expect(placeOn(list, `${u.id}/${sid}`)).toBe('Germany (DE)');

    // The admin API's user view.
    const api = await call(`/auth/admin/users/${u.id}`, { env: e, cookies: admin.jar, headers: { accept: 'application/json' } });
    expect(api.status).toBe(200);
    expect(((await api.json()) as { sessions: { id: string; country: string | null }[] }).sessions.find((s) => s.id === sid)?.country).toBe('DE');
  });

  it('names Tor as "Tor network", and keeps no country it cannot trust: unknown, absent, malformed, or only a header', async () => {
    const u = await seedUser();
    const tor = await signInFrom(u.email, { country: 'T1' });
    expect(await storedCountry(u.id, tor.sid)).toBe('T1');

    const unknown: [string, Record<string, unknown> | undefined, Record<string, string>][] = [
      ['XX (the edge does not know)', { country: 'XX' }, {}],
      ['no cf at all', undefined, {}],
      ['a name', { country: 'germany' }, {}],
      ['markup', { country: '<b>' }, {}],
      ['one letter', { country: 'D' }, {}],
      ['lower case', { country: 'de' }, {}],
      ['not a string', { country: 49 }, {}],
      ['a header the client set', undefined, { 'cf-ipcountry': 'DE' }],
    ];
    const sids: string[] = [];
    for (const [what, cf, headers] of unknown) {
      const { sid } = await signInFrom(u.email, cf, headers);
      expect(await storedCountry(u.id, sid), what).toBeNull();
      sids.push(sid);
    }

    const view = await pageHtml(await browse(e, admin.jar, `${USERS}/${u.id}`));
    expect(placeOn(view, tor.sid)).toBe('Tor network');
    for (const sid of sids) expect(placeOn(view, sid)).toBe('Unknown');
    expect(view).not.toContain('<b>');
  });
});

describe('what happens to a session after its start', () => {
  it('a refresh and a step-up from another country keep the place of the sign-in: it says where the session began', async () => {
    const u = await seedUser();
    const { sid, jar } = await signInFrom(u.email, { country: 'DE' });

    const refreshed = await postFrom('/auth/refresh', jar, { country: 'FR' }, {});
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);
    const set = setCookies(refreshed);
    const after = { '__Host-gatehouse': set.get('__Host-gatehouse')!.value, '__Secure-gatehouse-refresh': set.get('__Secure-gatehouse-refresh')!.value };
    expect(decodeJwt<{ sid: string }>(after['__Host-gatehouse']).sid).toBe(sid);
    expect(await storedCountry(u.id, sid)).toBe('DE');

    const stepped = await postFrom('/auth/step-up', after, { country: 'US' }, { password: GOOD_PASSWORD });
    expect(stepped.status, await stepped.clone().text()).toBe(200);
    expect(await storedCountry(u.id, sid)).toBe('DE');
  });
});

describe('the Sessions area: filter by country', () => {
  it('lists only the sessions started in the country named by its code (either case), and answers a bad code with a clear 400 page', async () => {
    const u = await seedUser();
    const de = await signInFrom(u.email, { country: 'DE' });
    const fr = await signInFrom(u.email, { country: 'FR' });
    const none = await signInFrom(u.email, undefined);
    const refs = (html: string) => [...html.matchAll(/<tr data-session="([^"]+)"/g)].map((m) => m[1]!);

    expect(refs(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}`)))).toEqual(expect.arrayContaining([de, fr, none].map((s) => `${u.id}/${s.sid}`)));
    const germany = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}&country=de`));
    expect(refs(germany)).toEqual([`${u.id}/${de.sid}`]);
    expect(germany).toMatch(/<input id="f-country" name="country"[^>]* value="de"/);
    expect(refs(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}&country=FR`)))).toEqual([`${u.id}/${fr.sid}`]);
    expect(refs(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}&country=T1`)))).toEqual([]);

    for (const bad of ['DEU', 'germany', '%3Cb%3E', 'D', '12']) {
      const r = await browse(e, admin.jar, `${SESSIONS}?country=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(await pageHtml(r), bad).toContain('must be a two-letter country code');
    }
  });

  it('takes only ASCII letters: a character that capitalises into a code (ß to SS, ı to I, ﬅ to ST) is a 400, not another country', async () => {
    const u = await seedUser();
    // A session in each country those characters would become, so a filter that took them would list one.
    await signInFrom(u.email, { country: 'SS' });
    await signInFrom(u.email, { country: 'IE' });
    await signInFrom(u.email, { country: 'ST' });
    for (const odd of ['ß', 'ıe', 'ﬅ', 'ＤＥ']) {
      const r = await browse(e, admin.jar, `${SESSIONS}?user=${u.id}&country=${encodeURIComponent(odd)}`);
      expect(r.status, odd).toBe(400);
      expect(await pageHtml(r), odd).toContain('must be a two-letter country code');
    }
  });
});

describe('sessions of earlier versions', () => {
  it('an object made before places were kept gains the column, and its sessions show the place as "Unknown"', async () => {
    const u = await seedUser();
    const sid = `ses_${randomId(12)}`;
    const t = Math.floor(Date.now() / 1000);
    await runInDurableObject(sessionsObject(u.id), async (_instance, state) => {
      const sql = state.storage.sql;
      // The table as the previous version made it, holding a live session.
      sql.exec('DROP TABLE sessions');
      sql.exec(`CREATE TABLE sessions (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL, refresh_hash TEXT NOT NULL UNIQUE, family TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, revoked_at INTEGER,
        user_agent TEXT, ip TEXT, provider TEXT, amr TEXT NOT NULL DEFAULT '[]', auth_time INTEGER,
        groups TEXT, groups_read_at INTEGER, provider_subject TEXT, provider_grant TEXT, provider_sid TEXT)`);
      sql.exec("INSERT INTO meta (key, value) VALUES ('copied_from_d1', '1') ON CONFLICT (key) DO NOTHING");
      sql.exec(
        "INSERT INTO sessions (id, user_id, refresh_hash, family, created_at, expires_at, last_used_at, provider, amr, auth_time) VALUES (?, ?, ?, 'fam', ?, ?, ?, 'password', '[\"pwd\"]', ?)",
        sid, u.id, await sha256(randomId(32)), t - 3600, t + 86_400, t - 600, t - 3600,
      );
      // This version starting on that storage.
      new UserSessions(state, testEnv);
      const columns = sql.exec<{ name: string }>('PRAGMA table_info(sessions)').toArray().map((c) => c.name);
      expect(columns).toContain('country');
    });
    expect(await storedCountry(u.id, sid)).toBeNull();
    const view = await pageHtml(await browse(e, admin.jar, `${USERS}/${u.id}`));
    expect(placeOn(view, sid)).toBe('Unknown');
    // And the object, so upgraded, keeps the place of a new sign-in.
    const fresh = await signInFrom(u.email, { country: 'NZ' });
    expect(await storedCountry(u.id, fresh.sid)).toBe('NZ');
  });
});
