/**
 * Every way a user's session ends, driven through the Worker as a user, an admin or a mailed
 * link would: for the tests that pin what each ending owes to others (apps' back-channel logout,
 * origins' logout notices). Each account has two sessions, `a` and `b`; an ending ends `a`, and
 * `b` too when `endsAll`.
 */
import { decodeJwt } from 'jose';
import { expect } from 'vitest';
import { bearer, call, GOOD_PASSWORD, seedUser, signIn, type TestEnv } from './helpers';
import { lastMailFor, uniqueEmail } from './mail';
import { sessionExec } from './user-sessions-store';

export const sidOf = (t: { access_token: string }) => decodeJwt<{ sid: string }>(t.access_token).sid;

/** Expects the answer's status (its body in the message when it is not). */
export const ok = async (r: Promise<Response>, status = 200) => {
  const response = await r;
  expect(response.status, await response.clone().text()).toBe(status);
};

type Tokens = Awaited<ReturnType<typeof signIn>>;

/** A verified account signed in twice (sessions `a` and `b`) in `e`. */
export async function twoSessions(e: TestEnv, label: string, roles: string[] = []): Promise<{ userId: string; email: string; a: Tokens; b: Tokens }> {
  const user = await seedUser({ email: uniqueEmail(label), verified: true, roles });
  const a = await signIn(user.email, GOOD_PASSWORD, e);
  const b = await signIn(user.email, GOOD_PASSWORD, e);
  return { userId: user.id, email: user.email, a, b };
}

export interface Ending {
  name: string;
  /** Whether the user's other session (b) ends too. */
  endsAll: boolean;
  end: (u: Awaited<ReturnType<typeof twoSessions>>) => Promise<void>;
}

/** The endings, in `e` (mail on: the reset and the email change go through their links). */
export function sessionEndings(e: TestEnv): Ending[] {
  return [
    { name: 'sign-out', endsAll: false, end: (u) => ok(call('/auth/logout', { method: 'POST', headers: bearer(u.a.access_token), env: e })) },
    { name: 'ending one session from the list', endsAll: false, end: (u) => ok(call(`/auth/sessions/${sidOf(u.a)}`, { method: 'DELETE', headers: bearer(u.b.access_token), env: e })) },
    { name: 'sign-out everywhere', endsAll: true, end: (u) => ok(call('/auth/logout-all', { method: 'POST', headers: bearer(u.a.access_token), env: e })) },
    {
      name: 'refresh-token reuse',
      endsAll: false,
      end: async (u) => {
        await ok(call('/auth/refresh', { json: { refresh_token: u.a.refresh_token }, env: e }));
        await sessionExec('UPDATE rotated_refresh_tokens SET rotated_at = rotated_at - 60', [], u.userId);
        await ok(call('/auth/refresh', { json: { refresh_token: u.a.refresh_token }, env: e }), 401);
      },
    },
    {
      name: 'an admin disabling the account',
      endsAll: true,
      end: async (u) => {
        const admin = await seedUser({ email: uniqueEmail('admin'), verified: true, roles: ['admin'] });
        const t = await signIn(admin.email, GOOD_PASSWORD, e);
        await ok(call(`/auth/admin/users/${u.userId}/disable`, { method: 'POST', headers: bearer(t.access_token), env: e }));
      },
    },
    {
      name: 'a password reset',
      endsAll: true,
      end: async (u) => {
        await ok(call('/auth/password/forgot', { json: { email: u.email }, env: e }), 202);
        const link = new URL((await lastMailFor(u.email)).links.find((l) => l.includes('/password/reset'))!);
        await ok(call('/auth/password/reset', { json: { token: link.searchParams.get('token')!, password: 'a brand new passphrase for later' }, env: e }));
      },
    },
    {
      name: 'an email change, ending the other sessions',
      endsAll: false,
      end: async (u) => {
        const next = uniqueEmail('moved');
        await ok(call('/auth/account/email', { json: { new_email: next, current_password: GOOD_PASSWORD }, headers: bearer(u.b.access_token), env: e }), 202);
        const link = new URL((await lastMailFor(next)).links[0]!);
        await ok(call('/auth/account/email/confirm', { json: { token: link.searchParams.get('token')!, current_password: GOOD_PASSWORD }, headers: bearer(u.b.access_token), env: e }));
      },
    },
    { name: 'deleting the account', endsAll: true, end: (u) => ok(call('/auth/account/delete', { json: { password: GOOD_PASSWORD }, headers: bearer(u.a.access_token), env: e })) },
  ];
}
