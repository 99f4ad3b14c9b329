/**
 * The console's Sessions area: live sessions across users, filtered (user by address or id,
 * sign-in method, since, address, device) and paged by the users who signed in most recently;
 * ending one or many, confirmed first (nothing changes before), audited with the acting admin,
 * and final: the ended sessions' tokens are refused at once on a `revocation = "immediate"`
 * route. Bad input gets a clear 400 page.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, GOOD_PASSWORD, seedUser, type TestEnv, type TokenResponse } from '../support/helpers';
import { recordingOrigin } from '../support/proxy-helpers';
import type { Jar } from '../support/second-factor-helpers';
import { sessionsObject } from '../support/user-sessions-store';
import { adminWithSecondFactor, auditRows, browse, consoleEnv, pageHtml, submit } from './console-support';

const SESSIONS = '/auth/admin/console/sessions';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0';
const SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1';

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  e = consoleEnv({ ROUTES: JSON.stringify([{ path: '/now', origin: 'service:ORIGIN', auth: 'required', revocation: 'immediate' }]), ORIGIN: recordingOrigin() });
  admin = await adminWithSecondFactor(e);
});

/** A password sign-in from a given browser and address: a real session. */
async function signInFrom(email: string, userAgent: string, ip: string): Promise<TokenResponse & { sid: string }> {
  const r = await call('/auth/login', { env: e, json: { email, password: GOOD_PASSWORD }, headers: { 'user-agent': userAgent, 'cf-connecting-ip': ip } });
  expect(r.status, await r.clone().text()).toBe(200);
  const t = await r.json<TokenResponse>();
  return { ...t, sid: decodeJwt<{ sid: string }>(t.access_token).sid };
}

const refsOn = (html: string) => [...html.matchAll(/<tr data-session="([^"]+)"/g)].map((m) => m[1]!);
const ref = (userId: string, t: { sid: string }) => `${userId}/${t.sid}`;
const atNow = (t: TokenResponse) => call('/now/x', { env: e, headers: { ...bearer(t.access_token), accept: 'application/json' } });
const liveInObject = async (userId: string, sid: string) => (await sessionsObject(userId).find(userId, 'id', sid))?.revokedAt === null;

describe('the Sessions area: listing and filters', () => {
  it('lists live sessions across users with device, address and sign-in method, and filters by user, method, since, address and device', async () => {
    const ada = await seedUser();
    const bo = await seedUser();
    const adaLaptop = await signInFrom(ada.email, FIREFOX, '198.51.100.10');
    const adaPhone = await signInFrom(ada.email, SAFARI, '198.51.100.11');
    const boLaptop = await signInFrom(bo.email, FIREFOX, '198.51.100.20');

    const all = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?ip=198.51.100.`));
    expect(refsOn(all)).toEqual(expect.arrayContaining([ref(ada.id, adaLaptop), ref(ada.id, adaPhone), ref(bo.id, boLaptop)]));
    expect(all).toContain('Firefox on Linux');
    expect(all).toContain('198.51.100.11');
    expect(all).toContain('with password');
    expect(all).toContain(`href="/auth/admin/console/users/${ada.id}"`);

    const byEmail = refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${encodeURIComponent(ada.email)}`)));
    expect(byEmail.sort()).toEqual([ref(ada.id, adaLaptop), ref(ada.id, adaPhone)].sort());
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${bo.id}`)))).toEqual([ref(bo.id, boLaptop)]);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${ada.id}&device=safari%20on%20ios`)))).toEqual([ref(ada.id, adaPhone)]);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?ip=198.51.100.2`)))).toEqual([ref(bo.id, boLaptop)]);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${ada.id}&provider=password`))).length).toBe(2);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${ada.id}&provider=github`)))).toEqual([]);
    // Since: tomorrow finds nothing; a day ago finds them.
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${ada.id}&since=${day(1)}`)))).toEqual([]);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${ada.id}&since=${day(-1)}T00:00`))).length).toBe(2);

    const nobody = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=nobody%40example.com`));
    expect(nobody).toContain('No account has this address or id.');
    expect(refsOn(nobody)).toEqual([]);
    // An ended session is not live: gone from the list.
    await sessionsObject(bo.id).end(bo.id, [boLaptop.sid], Math.floor(Date.now() / 1000));
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${bo.id}`)))).toEqual([]);
    expect((await auditRows('admin_sessions_listed', admin.id)).some((d) => d.admin === admin.id && d.user === ada.id)).toBe(true);
  });

  it('pages by the users who signed in most recently, 20 a page, keeping the filters in the links', async () => {
    const t = Math.floor(Date.now() / 1000);
    const users = [];
    for (let i = 0; i < 21; i++) {
      const u = await seedUser();
      users.push(u);
      // A session in the user's object and its sign-in event (the index the listing reads), the most recent sign-ins of all.
      await sessionsObject(u.id).create(u.id, {
        id: `ses_pager${i}`, user_id: u.id, refresh_hash: `pager-hash-${u.id}`, family: 'f', created_at: t, expires_at: t + 3600, last_used_at: t,
        revoked_at: null, user_agent: 'PagerBot/1.0', ip: `192.0.2.${i}`, provider: 'password', amr: '["pwd"]', auth_time: t,
      });
      await env.DB.prepare("INSERT INTO auth_events (at, event, outcome, user_id) VALUES (?, 'login', 'success', ?)").bind(t + 3600 + i, u.id).run();
    }
    const first = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?ip=192.0.2.`));
    // Newest sign-in first: users 20 down to 1.
    expect(refsOn(first)).toEqual(users.slice(1).reverse().map((u, j) => `${u.id}/ses_pager${20 - j}`));
    expect(first).toContain(`href="${SESSIONS}?ip=192.0.2.&amp;page=2"`);
    expect(first).not.toContain('rel="prev"');
    const second = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?ip=192.0.2.&page=2`));
    expect(refsOn(second)).toEqual([`${users[0]!.id}/ses_pager0`]);
    expect(second).toContain(`href="${SESSIONS}?ip=192.0.2.&amp;page=1"`);
  });

  it('names a user with more live sessions than the listing reads, so a filter that finds none of theirs does not pass for "none"', async () => {
    const u = await seedUser();
    const idle = await signInFrom(u.email, FIREFOX, '203.0.113.80');
    const t = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 100; i++) {
      await sessionsObject(u.id).create(u.id, {
        id: `ses_crowd${i}`, user_id: u.id, refresh_hash: `crowd-hash-${u.id}-${i}`, family: `crowd${i}`, created_at: t, expires_at: t + 3600, last_used_at: t + 60,
        revoked_at: null, user_agent: 'BusyBot/1.0', ip: '192.0.2.201', provider: 'password', amr: '["pwd"]', auth_time: t,
      });
    }
    const html = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}&ip=203.0.113.80`));
    expect(refsOn(html)).not.toContain(ref(u.id, idle));
    expect(html).toContain('id="crowded"');
    expect(html).toContain(`${u.email}</a> has at least 100 live sessions`);
    expect(html).toContain(`href="/auth/admin/console/users/${u.id}"`);
    // A user under the bound gets no such note.
    const calm = await seedUser();
    await signInFrom(calm.email, FIREFOX, '203.0.113.81');
    expect(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${calm.id}`))).not.toContain('id="crowded"');
  });

  it('says when sign-in events age out before sessions do (AUDIT_RETENTION_DAYS shorter than SESSION_MAX_AGE): older sessions are on their users\' pages only', async () => {
    expect(await pageHtml(await browse(e, admin.jar, SESSIONS))).not.toContain('id="retention-gap"');
    const short = consoleEnv({ AUDIT_RETENTION_DAYS: '30', SESSION_MAX_AGE: String(90 * 86_400) });
    const other = await adminWithSecondFactor(short);
    const html = await pageHtml(await browse(short, other.jar, SESSIONS));
    expect(html).toContain('id="retention-gap"');
    expect(html).toContain('Sign-in events are kept 30 days');
    expect(html).toContain('up to 90 days');
  });

  it('filtered by one user, lists their live sessions from their object, even one whose sign-in event is missing (a failed audit write, or aged out)', async () => {
    const u = await seedUser();
    const t = Math.floor(Date.now() / 1000);
    // A live session and no `login` event: what a sign-in whose audit write failed, or whose event housekeeping deleted, leaves.
    await sessionsObject(u.id).create(u.id, {
      id: 'ses_unlogged', user_id: u.id, refresh_hash: `unlogged-hash-${u.id}`, family: 'unlogged', created_at: t, expires_at: t + 3600, last_used_at: t,
      revoked_at: null, user_agent: FIREFOX, ip: '203.0.113.90', provider: 'password', amr: '["pwd"]', auth_time: t,
    });
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}`)))).toEqual([`${u.id}/ses_unlogged`]);
    expect(refsOn(await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${encodeURIComponent(u.email)}&ip=203.0.113.9`)))).toEqual([`${u.id}/ses_unlogged`]);
    // One user is one page.
    const second = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}&page=2`));
    expect(refsOn(second)).toEqual([]);
    expect(second).not.toContain('rel="next"');
  });

  it('answers bad filters with a clear 400 page', async () => {
    const cases: [string, string][] = [
      ['since=2026-02-31', 'must be a date'],
      ['since=yesterday', 'must be a date'],
      ['since=2026-11-23T25:00', 'must be a date'],
      [`user=${'a'.repeat(255)}`, 'is too long'],
      ['provider=not%20a%20provider', 'must be a sign-in method'],
      ['ip=evil.example', 'must be an IP address'],
      [`device=${'d'.repeat(65)}`, 'is too long'],
      ['page=0', 'must be a page number'],
      ['page=501', 'must be at most 500'],
    ];
    for (const [query, message] of cases) {
      const r = await browse(e, admin.jar, `${SESSIONS}?${query}`);
      expect(r.status, query).toBe(400);
      expect(await pageHtml(r), query).toContain(message);
    }
  });
});

describe('the Sessions area: ending sessions', () => {
  it('ends one session from its row: confirmed first (nothing changes before), then ended with its tokens, audited with the admin', async () => {
    const u = await seedUser();
    const laptop = await signInFrom(u.email, FIREFOX, '203.0.113.30');
    const phone = await signInFrom(u.email, SAFARI, '203.0.113.31');
    expect((await atNow(laptop)).status).toBe(200);

    const ask = await submit(e, admin.jar, `${SESSIONS}/end`, { one: ref(u.id, laptop) });
    expect(ask.status, await ask.clone().text()).toBe(200);
    const askHtml = await pageHtml(ask);
    expect(askHtml).toContain('End this session?');
    expect(askHtml).toContain(`${u.email}: one session.`);
    expect(askHtml).toContain(`name="s0" value="${ref(u.id, laptop)}"`);
    expect(await liveInObject(u.id, laptop.sid), 'nothing ends before the confirmation').toBe(true);
    expect(await env.REVOKED.get(`sid:${laptop.sid}`)).toBeNull();
    expect((await atNow(laptop)).status).toBe(200);

    const done = await submit(e, admin.jar, `${SESSIONS}/end`, { s0: ref(u.id, laptop), confirm: 'yes' });
    expect(done.status, await done.clone().text()).toBe(303);
    expect(done.headers.get('location')).toBe(`${SESSIONS}?done=ended`);
    expect(await pageHtml(await browse(e, admin.jar, done.headers.get('location')!))).toContain('The sessions you selected have ended');
    expect(await liveInObject(u.id, laptop.sid)).toBe(false);
    expect(await env.REVOKED.get(`sid:${laptop.sid}`)).not.toBeNull();
    const refused = await atNow(laptop);
    expect(refused.status).toBe(401);
    expect((await refused.json<{ error: string }>()).error).toBe('invalid_token');
    // The other session is untouched.
    expect(await liveInObject(u.id, phone.sid)).toBe(true);
    expect((await atNow(phone)).status).toBe(200);
    expect(await auditRows('admin_sessions_ended', u.id)).toEqual([{ admin: admin.id, ended_sessions: 1, session_ids: [laptop.sid] }]);
  });

  it('ends the sessions selected with checkboxes across users in one confirmed post; a session paired with another user is left alone', async () => {
    const a = await seedUser();
    const b = await seedUser();
    const a1 = await signInFrom(a.email, FIREFOX, '203.0.113.40');
    const a2 = await signInFrom(a.email, SAFARI, '203.0.113.41');
    const b1 = await signInFrom(b.email, FIREFOX, '203.0.113.42');
    const b2 = await signInFrom(b.email, SAFARI, '203.0.113.43');
    const selected = { s0: ref(a.id, a1), s1: ref(a.id, a2), s5: ref(b.id, b1), s6: `${a.id}/${b2.sid}` };

    const ask = await pageHtml(await submit(e, admin.jar, `${SESSIONS}/end`, selected));
    expect(ask).toContain('End these 4 sessions?');
    expect(ask).toContain(`${a.email}: 3 sessions.`);
    expect(ask).toContain(`${b.email}: one session.`);
    for (const t of [a1, a2, b1, b2]) expect((await atNow(t)).status).toBe(200);

    const done = await submit(e, admin.jar, `${SESSIONS}/end`, { ...selected, confirm: 'yes' });
    expect(done.status).toBe(303);
    for (const t of [a1, a2, b1]) expect((await atNow(t)).status).toBe(401);
    // b2 was named under a's account: not a's session, so nothing of b's ends by it.
    expect(await liveInObject(b.id, b2.sid)).toBe(true);
    expect((await atNow(b2)).status).toBe(200);
    expect(await env.REVOKED.get(`sid:${b2.sid}`)).toBeNull();
    const [forA] = await auditRows('admin_sessions_ended', a.id);
    expect(forA).toMatchObject({ admin: admin.id, ended_sessions: 2 });
    expect((forA!.session_ids as string[]).sort()).toEqual([a1.sid, a2.sid].sort());
    expect(await auditRows('admin_sessions_ended', b.id)).toEqual([{ admin: admin.id, ended_sessions: 1, session_ids: [b1.sid] }]);

    // Again: nothing live is left of the selection.
    const again = await submit(e, admin.jar, `${SESSIONS}/end`, { s0: ref(a.id, a1), confirm: 'yes' });
    expect(again.headers.get('location')).toBe(`${SESSIONS}?done=none_ended`);
  });

  it('ends a live session its user\'s object does not list among the 100 most recently used (more than 100 live sessions)', async () => {
    const u = await seedUser();
    const idle = await signInFrom(u.email, FIREFOX, '203.0.113.70');
    const t = Math.floor(Date.now() / 1000);
    // A hundred sessions used more recently than `idle`: the object's listing stops before it.
    for (let i = 0; i < 100; i++) {
      await sessionsObject(u.id).create(u.id, {
        id: `ses_busy${i}`, user_id: u.id, refresh_hash: `busy-hash-${u.id}-${i}`, family: `busy${i}`, created_at: t, expires_at: t + 3600, last_used_at: t + 60,
        revoked_at: null, user_agent: 'BusyBot/1.0', ip: '192.0.2.200', provider: 'password', amr: '["pwd"]', auth_time: t,
      });
    }
    const done = await submit(e, admin.jar, `${SESSIONS}/end`, { s0: ref(u.id, idle), confirm: 'yes' });
    expect(done.headers.get('location')).toBe(`${SESSIONS}?done=ended`);
    expect(await liveInObject(u.id, idle.sid)).toBe(false);
    expect((await atNow(idle)).status).toBe(401);
    expect(await auditRows('admin_sessions_ended', u.id)).toEqual([{ admin: admin.id, ended_sessions: 1, session_ids: [idle.sid] }]);
  });

  it('revokes in KV again a selected session that ended so recently its tokens may still verify (a retry after a failed KV write)', async () => {
    const u = await seedUser();
    const t = await signInFrom(u.email, FIREFOX, '203.0.113.71');
    // The object ended it and KV was never told: what a first attempt whose KV write failed leaves.
    await sessionsObject(u.id).end(u.id, [t.sid], Math.floor(Date.now() / 1000));
    expect(await env.REVOKED.get(`sid:${t.sid}`)).toBeNull();
    const again = await submit(e, admin.jar, `${SESSIONS}/end`, { s0: ref(u.id, t), confirm: 'yes' });
    expect(again.headers.get('location')).toBe(`${SESSIONS}?done=none_ended`);
    expect(await env.REVOKED.get(`sid:${t.sid}`)).not.toBeNull();
  });

  it('warns in the confirmation when the selection holds the admin\'s own current session', async () => {
    const me = await adminWithSecondFactor(e);
    const mine = decodeJwt<{ sid: string }>(me.jar['__Host-gatehouse']!).sid;
    const u = await seedUser();
    const t = await signInFrom(u.email, FIREFOX, '203.0.113.72');
    const own = await pageHtml(await submit(e, me.jar, `${SESSIONS}/end`, { s0: `${me.id}/${mine}`, s1: ref(u.id, t) }));
    expect(own).toContain('id="confirm"');
    expect(own).toContain('This includes the session you are using now: you will be signed out.');
    const others = await pageHtml(await submit(e, me.jar, `${SESSIONS}/end`, { s0: ref(u.id, t) }));
    expect(others).not.toContain('the session you are using now');
    expect(await liveInObject(me.id, mine)).toBe(true);
  });

  it('takes at most 100 sessions a post, and refuses a post without a selection or with a malformed one (400, nothing ends)', async () => {
    const u = await seedUser();
    const t = await signInFrom(u.email, FIREFOX, '203.0.113.50');
    const full = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`s${i}`, ref(u.id, t)]));
    expect((await submit(e, admin.jar, `${SESSIONS}/end`, full)).status).toBe(200);
    const over = await submit(e, admin.jar, `${SESSIONS}/end`, { ...full, s100: ref(u.id, t), confirm: 'yes' });
    expect(over.status).toBe(400);
    expect(await pageHtml(over)).toContain('Field &quot;s100&quot;: is not a known field');
    const none = await submit(e, admin.jar, `${SESSIONS}/end`, { confirm: 'yes' });
    expect(none.status).toBe(400);
    expect(await pageHtml(none)).toContain('Select at least one session to end.');
    const bad = await submit(e, admin.jar, `${SESSIONS}/end`, { s0: `${u.id}:${t.sid}`, confirm: 'yes' });
    expect(bad.status).toBe(400);
    expect(await pageHtml(bad)).toContain('must be a session of the list');
    expect(await liveInObject(u.id, t.sid)).toBe(true);
    expect((await atNow(t)).status).toBe(200);
  });

  it('the listing offers a checkbox per row and a button per row, in one form posting to the end action', async () => {
    const u = await seedUser();
    const t = await signInFrom(u.email, FIREFOX, '203.0.113.60');
    const html = await pageHtml(await browse(e, admin.jar, `${SESSIONS}?user=${u.id}`));
    expect(html).toContain(`<form method="post" action="${SESSIONS}/end" id="end-sessions">`);
    expect(html).toContain(`name="s0" value="${ref(u.id, t)}"`);
    expect(html).toContain(`name="one" value="${ref(u.id, t)}"`);
  });
});
