/**
 * A sign-in checks a first factor against the account as it read it, then stores a session or a
 * pending second-factor state. If the mailbox owner claims the account in between (a proof of
 * the mailbox: every session ended, factors and password removed, in one batch), what the
 * sign-in read is no longer the account: its session or pending state must not be stored after
 * the claim's batch, which would leave the squatter signed in to the owner's verified account
 * (with no factor left to ask for). The claim is made to land exactly in that gap by running its
 * batch just before the sign-in's write (to D1 for a pending state, to the user's sessions
 * object for a session: the sign-in checks the account again after storing, and ends it).
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { applyMailboxProof } from '../../../src/storage/mailbox-proof';
import { nowSeconds } from '../../../src/util/time';
import { ENCRYPTION_KEY, mfaEnv, userWithTotp } from '../support/second-factor-helpers';
import { claimBefore } from '../support/claim-between';
import { call, countRows, GOOD_PASSWORD, makeEnv, type TestEnv, uniqueEmail } from '../support/helpers';
import { claimBeforeCreate, sessionsObject } from '../support/user-sessions-store';

/** A squatter registers `email` with a password, never proving it. */
async function squat(e: TestEnv, email: string): Promise<string> {
  const r = await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } });
  expect(r.status, await r.clone().text()).toBe(201);
  const row = await env.DB.prepare('SELECT id, email_verified FROM users WHERE email = ?').bind(email).first<{ id: string; email_verified: number }>();
  expect(row!.email_verified).toBe(0);
  return row!.id;
}

/** The owner's claim (a verified provider sign-in, a sign-in code): its D1 batch, and every session ended in the user's object. */
const claim = (userId: string, email: string) => async () => {
  await applyMailboxProof(env.DB, { userId, email, password: { kind: 'remove' }, now: nowSeconds() });
  await sessionsObject(userId).endAll(userId, nowSeconds(), 660);
};

describe('a sign-in that read the account before a claim stores nothing after it', () => {
  it('a password sign-in: no session, no token', async () => {
    const e = makeEnv();
    const email = uniqueEmail('login-race');
    const userId = await squat(e, email);

    const r = await call('/auth/login', { env: { ...e, USER_SESSIONS: claimBeforeCreate(claim(userId, email)) }, json: { email, password: GOOD_PASSWORD } });
    expect(r.status, await r.clone().text()).toBe(409);
    expect(await r.text()).not.toContain('access_token');
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', userId)).toBe(0);
    expect((await env.DB.prepare('SELECT email_verified FROM users WHERE id = ?').bind(userId).first<{ email_verified: number }>())!.email_verified).toBe(1);
  });

  it('a password sign-in that owes setting up a factor (MFA_REQUIRED_ROLES): no pending state to enrol the squatter\'s own app with', async () => {
    const e = makeEnv({ MFA_REQUIRED_ROLES: 'staff', TOKEN_ENCRYPTION_KEY: ENCRYPTION_KEY });
    const email = uniqueEmail('pending-race');
    const userId = await squat(e, email);
    // A role an administrator gave the account: a claim keeps it.
    await env.DB.prepare(`UPDATE users SET roles = '["staff"]' WHERE id = ?`).bind(userId).run();

    const r = await call('/auth/login', { env: { ...e, DB: claimBefore(env.DB, 'INSERT INTO mfa_pending', claim(userId, email)) }, json: { email, password: GOOD_PASSWORD } });
    expect(r.status, await r.clone().text()).toBe(409);
    expect(await r.text()).not.toContain('mfa_token');
    expect(await countRows('mfa_pending', 'user_id = ?', userId)).toBe(0);
  });

  it('a second-factor completion: the claim lands after the pending state is spent and before the session is stored, and no session is left', async () => {
    const e = mfaEnv();
    const u = await userWithTotp(e, uniqueEmail('mfa-race'));
    expect((await env.DB.prepare('SELECT email_verified FROM users WHERE id = ?').bind(u.userId).first<{ email_verified: number }>())!.email_verified).toBe(0);
    const login = await call('/auth/login', { env: e, json: { email: u.email, password: GOOD_PASSWORD } });
    const { mfa_token } = (await login.json()) as { mfa_token: string };
    const r = await call('/auth/mfa', { env: { ...e, USER_SESSIONS: claimBeforeCreate(claim(u.userId, u.email)) }, json: { mfa_token, code: u.codes[0]! } });
    expect(r.status, await r.clone().text()).toBe(409);
    expect(await r.text()).not.toContain('access_token');
    expect(await countRows('sessions', 'user_id = ? AND revoked_at IS NULL', u.userId)).toBe(0);
  });
});
