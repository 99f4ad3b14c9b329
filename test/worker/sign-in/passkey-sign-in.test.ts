/**
 * Passkeys, sign-in: a passkey alone (discoverable credentials), and the exported
 * second-factor check. Real assertions from a software authenticator (passkeys-helpers.ts),
 * verified for real by @simplewebauthn/server. Every refusal: a clear JSON error, never a 500,
 * no session, counted against the per-IP limit.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { isRecentSignIn } from '../../../src/auth/recent-sign-in';
import { passkeyAmr, verifyPasskeyForUser, authenticationOptions, authenticationCredentialSchema } from '../../../src/auth/passkeys';
import { loadConfig } from '../../../src/config/load';
import type { AppEnv } from '../../../src/env';
import { readBody } from '../../../src/http/body';
import { configure } from '../../../src/middleware/configure';
import { errorHandler } from '../../../src/middleware/error-handler';
import { sha256 } from '../../../src/util/random';
import * as v from 'valibot';
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { baseEnv, bearer, call, countRows, defaultEnv, makeEnv, PUBLIC_URL, registerUser, setCookies, type TestEnv, type TokenResponse } from '../support/helpers';
import { FLAGS, postJson, SoftAuthenticator, type AuthenticationOptions, type RegistrationOptions } from '../support/passkeys-helpers';

/** A user with one registered passkey. */
async function userWithPasskey(opts: { flags?: number; counter?: number; env?: TestEnv } = {}) {
  const user = await registerUser(undefined, undefined, opts.env);
  const auth = await SoftAuthenticator.create({ counter: opts.counter });
  const o = (await postJson('/auth/passkeys/register/options', {}, { env: opts.env, headers: bearer(user.access_token) })).body as unknown as RegistrationOptions;
  const r = await postJson('/auth/passkeys/register', { credential: await auth.register(o, { flags: opts.flags }) }, { env: opts.env, headers: bearer(user.access_token) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { user, auth };
}

async function loginOptions(env?: TestEnv): Promise<AuthenticationOptions> {
  const r = await postJson('/auth/passkeys/login/options', {}, { env });
  expect(r.status).toBe(200);
  return r.body as unknown as AuthenticationOptions;
}

const login = (credential: unknown, extra: Record<string, unknown> = {}, env?: TestEnv) => postJson('/auth/passkeys/login', { credential, ...extra }, { env });
const passkeyRow = (id: string) => baseEnv.DB.prepare('SELECT * FROM passkeys WHERE id = ?').bind(id).first<Record<string, unknown>>();
const sessionsOf = (userId: string) => countRows('sessions', 'user_id = ?', userId);

describe('sign in with a passkey', () => {
  it('options: discoverable credentials (empty allowCredentials), rp id from PUBLIC_URL; the challenge is stored hashed, bound to no one', async () => {
    const o = await loginOptions();
    expect(o.rpId).toBe('gate.example.com');
    expect(o.allowCredentials).toEqual([]);
    expect(o.userVerification).toBe('preferred');
    const row = await baseEnv.DB.prepare('SELECT * FROM webauthn_challenges WHERE challenge_hash = ?').bind(await sha256(o.challenge)).first();
    expect(row).toMatchObject({ purpose: 'authenticate', user_id: null });
  });

  it('token mode: a real assertion signs in (session provider "passkey"); counter, backup flag and last use are updated', async () => {
    const { user, auth } = await userWithPasskey({ flags: FLAGS.UP | FLAGS.UV | FLAGS.BE });
    expect(await passkeyRow(auth.id)).toMatchObject({ backed_up: 0, counter: 0, last_used_at: null });
    const before = await sessionsOf(user.user.id);
    const r = await login(await auth.assert(await loginOptions(), { flags: FLAGS.UP | FLAGS.UV | FLAGS.BE | FLAGS.BS }));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String), refresh_token: expect.any(String), user: { id: user.user.id } });
    expect(await sessionsOf(user.user.id)).toBe(before + 1);
    expect(await countRows('sessions', "user_id = ? AND provider = 'passkey'", user.user.id)).toBe(1);
    expect(await passkeyRow(auth.id)).toMatchObject({ counter: 1, backed_up: 1, last_used_at: expect.any(Number) });
    expect(await countRows('auth_events', "event = 'login' AND outcome = 'success' AND user_id = ? AND detail LIKE '%passkey%'", user.user.id)).toBe(1);
    // The token works.
    const me = await call('/auth/me', { headers: bearer(String(r.body!.access_token)) });
    expect(me.status).toBe(200);
  });

  it('cookie mode: the session travels only in cookies', async () => {
    const { auth } = await userWithPasskey();
    const r = await login(await auth.assert(await loginOptions()), { session: 'cookie' }, undefined);
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).not.toMatch(/access_token|refresh_token/);
    const set = setCookies(r.response);
    // The session's two cookies, and the directory bookmark (a position in D1's history, no token).
    expect([...set.keys()].sort()).toEqual(['__Host-gatehouse', '__Secure-gatehouse-d1', '__Secure-gatehouse-refresh']);
    expect(set.get('__Secure-gatehouse-d1')!.value).not.toMatch(/^eyJ/);
  });

  it('an authenticator without a counter (always 0) signs in again and again', async () => {
    const { auth } = await userWithPasskey();
    for (let i = 0; i < 2; i++) {
      const r = await login(await auth.assert(await loginOptions(), { counter: 0 }));
      expect(r.status).toBe(200);
    }
    expect(await passkeyRow(auth.id)).toMatchObject({ counter: 0 });
  });
});

describe('refused passkey assertions: clear errors, no session', () => {
  it('a replayed assertion (its challenge already used) is refused', async () => {
    const { user, auth } = await userWithPasskey();
    const assertion = await auth.assert(await loginOptions());
    expect((await login(assertion)).status).toBe(200);
    const sessions = await sessionsOf(user.user.id);
    const replay = await login(assertion);
    expect(replay.status).toBe(401);
    expect(replay.body).toMatchObject({ error: 'invalid_credentials', reason: 'challenge', error_description: expect.stringContaining('expired or was already used') });
    expect(replay.response.headers.get('www-authenticate')).toContain('Bearer');
    expect(await sessionsOf(user.user.id)).toBe(sessions);
  });

  it('wrong origin, wrong rp id, wrong type, unknown / expired / registration challenge are each refused', async () => {
    const { user, auth } = await userWithPasskey();
    const sessions = await sessionsOf(user.user.id);
    const cases: [string, () => Promise<unknown>, string][] = [
      ['wrong origin', async () => auth.assert(await loginOptions(), { origin: 'https://evil.example' }), 'origin'],
      ['wrong origin (port)', async () => auth.assert(await loginOptions(), { origin: `${PUBLIC_URL}:8443` }), 'origin'],
      ['wrong rp id', async () => auth.assert(await loginOptions(), { rpId: 'evil.example' }), 'verification'],
      ['wrong type', async () => auth.assert(await loginOptions(), { type: 'webauthn.create' }), 'verification'],
      ['unknown challenge', async () => auth.assert({ challenge: 'bm90LWlzc3VlZC1ieS11cw' }), 'challenge'],
      [
        'expired challenge',
        async () => {
          const o = await loginOptions();
          await baseEnv.DB.prepare('UPDATE webauthn_challenges SET expires_at = 1 WHERE challenge_hash = ?').bind(await sha256(o.challenge)).run();
          return auth.assert(o);
        },
        'challenge',
      ],
      [
        'a registration challenge',
        async () => {
          const o = (await postJson('/auth/passkeys/register/options', {}, { headers: bearer(user.access_token) })).body as unknown as RegistrationOptions;
          return auth.assert(o);
        },
        'challenge',
      ],
    ];
    for (const [name, make, reason] of cases) {
      const r = await login(await make());
      expect(r.status, name).toBe(401);
      expect(r.body, name).toMatchObject({ error: 'invalid_credentials', reason, error_description: expect.any(String) });
    }
    expect(await sessionsOf(user.user.id)).toBe(sessions);
  });

  it('a bad signature is refused', async () => {
    const { auth } = await userWithPasskey();
    const assertion = await auth.assert(await loginOptions());
    const other = await (await SoftAuthenticator.create()).assert({ challenge: 'x' });
    const r = await login({ ...assertion, response: { ...assertion.response, signature: other.response.signature } });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'invalid_credentials', reason: 'verification' });
  });

  it('a counter going backwards is refused, recorded as a security event, and the stored counter is kept', async () => {
    const { user, auth } = await userWithPasskey({ counter: 10 });
    expect((await login(await auth.assert(await loginOptions()))).status).toBe(200); // 11
    expect(await passkeyRow(auth.id)).toMatchObject({ counter: 11 });
    for (const counter of [11, 5]) {
      const r = await login(await auth.assert(await loginOptions(), { counter }));
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ error: 'invalid_credentials', reason: 'counter' });
    }
    expect(await passkeyRow(auth.id)).toMatchObject({ counter: 11 });
    expect(await countRows('auth_events', "event = 'passkey_counter_regression' AND outcome = 'security' AND user_id = ?", user.user.id)).toBe(2);
    expect(await countRows('sessions', "user_id = ? AND provider = 'passkey'", user.user.id)).toBe(1);
  });

  it('an unknown credential, a removed passkey and a user handle naming someone else are refused', async () => {
    const { user, auth } = await userWithPasskey();
    const stranger = await SoftAuthenticator.create();
    const unknown = await login(await stranger.assert(await loginOptions()));
    expect(unknown.status).toBe(401);
    expect(unknown.body).toMatchObject({ error: 'invalid_credentials', reason: 'unknown_credential' });

    const mismatch = await login(await auth.assert(await loginOptions(), { userHandle: btoa('usr_someone-else').replace(/=+$/, '') }));
    expect(mismatch.body).toMatchObject({ error: 'invalid_credentials', reason: 'user_mismatch' });
    const notText = await login(await auth.assert(await loginOptions(), { userHandle: '__8' }));
    expect(notText.body).toMatchObject({ error: 'invalid_credentials', reason: 'user_mismatch' });

    expect((await call(`/auth/passkeys/${auth.id}`, { method: 'DELETE', headers: bearer(user.access_token) })).status).toBe(200);
    const removed = await login(await auth.assert(await loginOptions()));
    expect(removed.body).toMatchObject({ error: 'invalid_credentials', reason: 'unknown_credential' });
  });

  it('a disabled account is refused with 403 forbidden', async () => {
    const { user, auth } = await userWithPasskey();
    await baseEnv.DB.prepare('UPDATE users SET disabled_at = 1 WHERE id = ?').bind(user.user.id).run();
    const sessions = await sessionsOf(user.user.id);
    const r = await login(await auth.assert(await loginOptions()));
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ error: 'forbidden', error_description: 'This account is disabled.' });
    expect(await sessionsOf(user.user.id)).toBe(sessions);
  });

  it('malformed bodies get 400 invalid_request, never a 500', async () => {
    const { auth } = await userWithPasskey();
    const good = await auth.assert(await loginOptions());
    const bodies = [
      '{',
      'null',
      JSON.stringify({}),
      JSON.stringify({ credential: null }),
      JSON.stringify({ credential: { ...good, type: 'password' } }),
      JSON.stringify({ credential: { ...good, id: 'not base64url!' } }),
      JSON.stringify({ credential: { ...good, response: { ...good.response, signature: 7 } } }),
      JSON.stringify({ credential: { ...good, response: { ...good.response, clientDataJSON: 'AAAA' } } }),
      JSON.stringify({ credential: { ...good, response: { ...good.response, clientDataJSON: 'e30' } } }),
      JSON.stringify({ credential: good, session: 'both' }),
      JSON.stringify({ credential: good, extra: 1 }),
    ];
    for (const body of bodies) {
      const r = await call('/auth/passkeys/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status, body).toBe(400);
      expect(await r.json(), body).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
    }
    // Garbage authenticator data with a real challenge: refused, not a crash.
    const o = await loginOptions();
    const a = await auth.assert(o);
    const r = await login({ ...a, response: { ...a.response, authenticatorData: 'AAAA' } });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: 'invalid_credentials', reason: 'verification' });
  });
});

describe('rate limits', () => {
  function countingLimiter(allowed: number) {
    const keys: string[] = [];
    return { keys, binding: { async limit(o: { key: string }) { keys.push(o.key); return { success: keys.length <= allowed }; } } };
  }

  it('each refused assertion and each options request counts against the passkey limit; past it, 429 rate_limited', async () => {
    const limiter = countingLimiter(3);
    const env = makeEnv({ RATE_LIMITER_PASSKEY: limiter.binding });
    const { auth } = await userWithPasskey({ env });
    const stranger = await SoftAuthenticator.create();
    const o = await loginOptions(env); // 1
    const first = await login(await stranger.assert(o), {}, env); // 2
    expect(first.status).toBe(401);
    const second = await login(await stranger.assert({ challenge: 'AAAA' }), {}, env); // 3
    expect(second.status).toBe(401);
    const third = await login(await stranger.assert({ challenge: 'AAAA' }), {}, env); // 4: over
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: 'rate_limited' });
    expect(limiter.keys.every((k) => k === 'passkey:203.0.113.7')).toBe(true);
    const options = await postJson('/auth/passkeys/login/options', {}, { env });
    expect(options.status).toBe(429);
    expect(auth.id).toBeTruthy();
  });

  it('a successful assertion is not counted (only its options request is)', async () => {
    const limiter = countingLimiter(1000);
    const env = makeEnv({ RATE_LIMITER_PASSKEY: limiter.binding });
    const { auth } = await userWithPasskey({ env });
    expect((await login(await auth.assert(await loginOptions(env)), {}, env)).status).toBe(200);
    expect(limiter.keys).toHaveLength(1);
  });
});

describe('a passkey as a second factor (verifyPasskeyForUser, for the pending state after a password)', () => {
  /** A tiny app around the exported functions, as the second-factor route will use them. */
  const config = (() => {
    const r = loadConfig(defaultEnv);
    if (!r.ok) throw r.error;
    return r.config;
  })();
  const app = new Hono<AppEnv>()
    .use(configure(config))
    .post('/options/:user', async (c) => c.json(await authenticationOptions(c, c.req.param('user'))))
    .post('/verify/:user', async (c) => {
      const { data } = await readBody(c, v.object({ credential: authenticationCredentialSchema }));
      const r = await verifyPasskeyForUser(c, c.req.param('user'), data.credential);
      return c.json({ user: r.user.id, passkey: r.passkey.id, userVerified: r.userVerified });
    });
  app.onError(errorHandler);
  async function req(path: string, json: unknown = {}) {
    const ctx = createExecutionContext();
    const r = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) }, defaultEnv, ctx);
    await waitOnExecutionContext(ctx);
    return { status: r.status, body: await r.json<Record<string, unknown>>() };
  }

  it('verifies the user’s own passkey against a challenge issued for that user; options list only their passkeys', async () => {
    const { user, auth } = await userWithPasskey();
    const o = (await req(`/options/${user.user.id}`)).body as unknown as AuthenticationOptions;
    expect(o.allowCredentials?.map((c) => c.id)).toEqual([auth.id]);
    const r = await req(`/verify/${user.user.id}`, { credential: await auth.assert(o) });
    expect(r).toEqual({ status: 200, body: { user: user.user.id, passkey: auth.id, userVerified: true } });
    expect(await passkeyRow(auth.id)).toMatchObject({ counter: 1 });
  });

  it('refuses another user’s passkey, a sign-in (unbound) challenge, and another user’s challenge', async () => {
    const a = await userWithPasskey();
    const b = await userWithPasskey();
    const forA = (await req(`/options/${a.user.user.id}`)).body as unknown as AuthenticationOptions;
    const otherKey = await req(`/verify/${a.user.user.id}`, { credential: await b.auth.assert(forA) });
    expect(otherKey).toMatchObject({ status: 401, body: { error: 'invalid_credentials', reason: 'user_mismatch' } });

    const unbound = await req(`/verify/${a.user.user.id}`, { credential: await a.auth.assert(await loginOptions()) });
    expect(unbound).toMatchObject({ status: 401, body: { error: 'invalid_credentials', reason: 'challenge' } });

    const forB = (await req(`/options/${b.user.user.id}`)).body as unknown as AuthenticationOptions;
    const crossed = await req(`/verify/${a.user.user.id}`, { credential: await a.auth.assert(forB) });
    expect(crossed).toMatchObject({ status: 401, body: { error: 'invalid_credentials', reason: 'challenge' } });
    // And a challenge bound to a user cannot sign anyone in on its own.
    const forA2 = (await req(`/options/${a.user.user.id}`)).body as unknown as AuthenticationOptions;
    expect((await login(await a.auth.assert(forA2))).body).toMatchObject({ error: 'invalid_credentials', reason: 'challenge' });
    expect(await passkeyRow(a.auth.id)).toMatchObject({ counter: 0 });
  });
});

describe('the rules the factor routes share: a recent sign-in, and the amr of a passkey', () => {
  it('isRecentSignIn: the sign-in (auth_time) within RECENT_AUTH_SECONDS, the one rule for every factor change', () => {
    // The factor routes pass RECENT_AUTH_SECONDS as the window.
    expect(isRecentSignIn(1000, 1600, 600)).toBe(true);
    expect(isRecentSignIn(1000, 1601, 600)).toBe(false);
    expect(isRecentSignIn(1000, 1061, 60)).toBe(false);
  });

  it('passkeyAmr: hwk for a device-bound key, swk for a synced one; mfa only with user verification', () => {
    expect(passkeyAmr({ deviceType: 'singleDevice', userVerified: true })).toEqual(['hwk', 'user', 'mfa']);
    expect(passkeyAmr({ deviceType: 'multiDevice', userVerified: true })).toEqual(['swk', 'user', 'mfa']);
    expect(passkeyAmr({ deviceType: 'singleDevice', userVerified: false })).toEqual(['hwk', 'user']);
  });
});

export type { TokenResponse };
