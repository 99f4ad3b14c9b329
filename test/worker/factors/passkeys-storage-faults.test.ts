/**
 * Passkeys when D1 fails: every passkey endpoint fails closed (503 `unavailable`, no internals),
 * no challenge is half-issued, no session is started, and a challenge is not lost to the outage.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, bearer, call, countRows, makeEnv, registerUser } from '../support/helpers';
import { postJson, SoftAuthenticator, type AuthenticationOptions, type RegistrationOptions } from '../support/passkeys-helpers';
import { sha256 } from '../../../src/util/random';

type Fn = (...args: unknown[]) => unknown;

/** D1 whose named methods reject as during an outage; everything else is the real binding. */
function d1Failing(methods: string[]): D1Database {
  return new Proxy(baseEnv.DB, {
    get(target, prop) {
      const down = () => new Error('D1_ERROR: Network connection lost. DELETE FROM webauthn_challenges');
      // `prepare` fails synchronously, `batch` (like the statements' calls) asynchronously, as D1 does.
      if (prop === 'prepare' && methods.includes(prop)) return () => {
        throw down();
      };
      if (typeof prop === 'string' && methods.includes(prop)) return () => Promise.reject(down());
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
}

async function expectUnavailable(r: { status: number; body: Record<string, unknown> | null; response: Response }) {
  expect(r.status).toBe(503);
  expect(r.body).toMatchObject({ error: 'unavailable' });
  expect(JSON.stringify(r.body)).not.toMatch(/D1|DELETE|webauthn_challenges|Network/);
}

describe('passkeys with D1 down', () => {
  it('options (sign-in and registration): 503 unavailable, no challenge stored', async () => {
    const user = await registerUser();
    const before = await countRows('webauthn_challenges');
    const env = makeEnv({ DB: d1Failing(['batch']) });
    await expectUnavailable(await postJson('/auth/passkeys/login/options', {}, { env }));
    await expectUnavailable(await postJson('/auth/passkeys/register/options', {}, { env, headers: bearer(user.access_token) }));
    expect(await countRows('webauthn_challenges')).toBe(before);
  });

  it('sign-in: 503 unavailable, no session; the challenge survives the outage and works after it', async () => {
    const user = await registerUser();
    const auth = await SoftAuthenticator.create();
    const ro = (await postJson('/auth/passkeys/register/options', {}, { headers: bearer(user.access_token) })).body as unknown as RegistrationOptions;
    expect((await postJson('/auth/passkeys/register', { credential: await auth.register(ro) }, { headers: bearer(user.access_token) })).status).toBe(201);
    const o = (await postJson('/auth/passkeys/login/options', {})).body as unknown as AuthenticationOptions;
    const assertion = await auth.assert(o);
    const sessions = await countRows('sessions', 'user_id = ?', user.user.id);
    await expectUnavailable(await postJson('/auth/passkeys/login', { credential: assertion }, { env: makeEnv({ DB: d1Failing(['prepare']) }) }));
    expect(await countRows('sessions', 'user_id = ?', user.user.id)).toBe(sessions);
    expect(await countRows('webauthn_challenges', 'challenge_hash = ?', await sha256(o.challenge))).toBe(1);
    expect((await postJson('/auth/passkeys/login', { credential: assertion })).status).toBe(200);
  });
});
