/**
 * Storage failures are typed at the storage boundary (storage/errors.ts `guard`) and mapped to
 * 503 `unavailable` in one place (`toApiError`), whatever text D1 or KV put in the error; a
 * bug of ours stays a 500. Recording an event (auth/events.ts) never changes the response when
 * its write fails.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { guard, StorageUnavailableError } from '../../../src/storage/errors';
import { baseEnv, bearer, call, GOOD_PASSWORD, makeEnv, registerUser } from '../support/helpers';

afterEach(() => vi.restoreAllMocks());

/** Text a runtime may give for an outage that no pattern of ours anticipates. */
const unknownOutage = () => new Error('internal error; reference = 0a1b2c3d4e');

type Fn = (...args: unknown[]) => unknown;

/** The real binding, except that `method` rejects with `error()`. */
function rejecting<T extends object>(real: T, method: string, error: () => Error): T {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === method) return async () => Promise.reject(error());
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
}

/** The real D1, except that statements whose SQL contains `fragment` reject when run. */
function failingStatements<T extends D1Database | D1DatabaseSession>(real: T, fragment: string): T {
  return new Proxy(real, {
    get(target, prop) {
      // D1's sessions (reads a replica may serve) fail alike.
      if (prop === 'withSession') return (arg?: string) => failingStatements((target as D1Database).withSession(arg), fragment);
      if (prop === 'prepare') {
        return (sql: string) => {
          if (!sql.includes(fragment)) return target.prepare(sql);
          const fail = async () => Promise.reject(unknownOutage());
          const stmt = { bind: () => stmt, first: fail, all: fail, run: fail, raw: fail };
          return stmt;
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as Fn).bind(target) : value;
    },
  });
}

function errorLines(spy: { mock: { calls: unknown[][] } }, event: string) {
  return spy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === event);
}

async function expectUnavailable(r: Response): Promise<{ error: string; error_description: string }> {
  expect(r.status).toBe(503);
  expect(r.headers.get('retry-after')).toBe('5');
  const text = await r.text();
  expect(text).not.toMatch(/internal error|reference|D1|KV/i);
  return JSON.parse(text) as { error: string; error_description: string };
}

describe('guard (the storage boundary)', () => {
  it('turns a rejection into StorageUnavailableError, keeping the cause for the log', async () => {
    const cause = unknownOutage();
    const failed = guard(async () => Promise.reject(cause));
    await expect(failed).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(failed).rejects.toMatchObject({ name: 'StorageUnavailableError', message: cause.message, cause });
  });

  it('also catches a synchronous throw (from prepare) and does not wrap twice', async () => {
    const inner = new StorageUnavailableError(new Error('first'), 'kept');
    await expect(
      guard(() => {
        throw unknownOutage();
      }),
    ).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(guard(async () => Promise.reject(inner))).rejects.toBe(inner);
  });

  it('lets a programming error (TypeError) through unchanged: a bug is not an outage', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    await expect(guard(async () => Promise.reject(bug))).rejects.toBe(bug);
  });
});

describe('storage failures answer 503 whatever their text', () => {
  it('a D1 failure with an unfamiliar message: 503 unavailable, nothing of its text', async () => {
    const user = await registerUser();
    const env = makeEnv({ DB: failingStatements(baseEnv.DB, 'SELECT') });
    const body = await expectUnavailable(await call('/auth/me', { env, headers: bearer(user.access_token) }));
    expect(body.error).toBe('unavailable');
  });

  it('a KV write failure with an unfamiliar message on logout: 503 unavailable', async () => {
    const user = await registerUser();
    const env = makeEnv({ REVOKED: rejecting(baseEnv.REVOKED, 'put', unknownOutage) });
    const body = await expectUnavailable(await call('/auth/logout', { env, method: 'POST', headers: bearer(user.access_token) }));
    expect(body.error).toBe('unavailable');
  });

  it('the revocation check keeps saying what cannot be read', async () => {
    const user = await registerUser();
    const env = makeEnv({ REVOKED: rejecting(baseEnv.REVOKED, 'get', unknownOutage) });
    const body = await expectUnavailable(await call('/auth/verify', { env, headers: bearer(user.access_token) }));
    expect(body).toMatchObject({ error: 'unavailable', error_description: 'The revocation list cannot be read right now. Try again shortly.' });
  });
});

describe('recording an event never changes the response', () => {
  it('sign-in succeeds when its audit row cannot be written; the failure is logged with the event name', async () => {
    const user = await registerUser();
    const error = vi.spyOn(console, 'error');
    const env = makeEnv({ DB: failingStatements(baseEnv.DB, 'INSERT INTO auth_events') });
    const r = await call('/auth/login', { env, json: { email: user.user.email, password: GOOD_PASSWORD } });
    expect(r.status).toBe(200);
    expect((await r.json<{ user: { id: string } }>()).user.id).toBe(user.user.id);
    expect(errorLines(error, 'audit_write_failed')).toEqual([expect.objectContaining({ audit_event: 'login', error: unknownOutage().message })]);
  });

  it('a revoked token is refused with invalid_token when its security event cannot be written', async () => {
    const user = await registerUser();
    expect((await call('/auth/logout', { method: 'POST', headers: bearer(user.access_token) })).status).toBe(200);
    const error = vi.spyOn(console, 'error');
    const warn = vi.spyOn(console, 'warn');
    const env = makeEnv({ DB: failingStatements(baseEnv.DB, 'INSERT INTO auth_events') });
    const r = await call('/auth/me', { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(401);
    expect((await r.json<{ error: string }>()).error).toBe('invalid_token');
    expect(errorLines(warn, 'revoked_token_presented')).toEqual([expect.objectContaining({ outcome: 'security', user_id: user.user.id })]);
    expect(errorLines(error, 'audit_write_failed')).toEqual([expect.objectContaining({ audit_event: 'revoked_token_presented' })]);
  });
});
