/**
 * Reads and writes the sessions that live in the users' Durable Objects (storage/user-sessions.ts),
 * for tests: the same `sessions` and `rotated_refresh_tokens` columns D1 once had, run in every
 * object this test file created (or in one user's). A test that ages a session or inspects it
 * does so where the gateway keeps it.
 */
import { env, listDurableObjectIds, runInDurableObject } from 'cloudflare:test';
import type { UserSessionsNamespace } from '../../../src/storage/user-sessions';

type Value = string | number | null;

/** SQL arguments as SQLite takes them (anything else is bound as its text). */
const values = (args: unknown[]): Value[] => args.map((a) => (typeof a === 'string' || typeof a === 'number' || a === null ? a : String(a)));

async function objects(userId?: string): Promise<DurableObjectStub[]> {
  const ns = env.USER_SESSIONS;
  if (userId !== undefined) return [ns.get(ns.idFromName(userId))];
  return (await listDurableObjectIds(ns)).map((id) => ns.get(id));
}

/** The rows `sql` returns in every object (or only `userId`'s). */
export async function sessionRows<T>(sql: string, args: unknown[] = [], userId?: string): Promise<T[]> {
  const rows: T[] = [];
  for (const stub of await objects(userId)) {
    const found = await runInDurableObject(stub, (_instance, state) => state.storage.sql.exec(sql, ...values(args)).toArray());
    rows.push(...(found as T[]));
  }
  return rows;
}

/** The first row `sql` returns in any object, or null. */
export async function sessionRow<T>(sql: string, args: unknown[] = [], userId?: string): Promise<T | null> {
  return (await sessionRows<T>(sql, args, userId))[0] ?? null;
}

/** Runs a write in every object (or only `userId`'s); returns the rows written. */
export async function sessionExec(sql: string, args: unknown[] = [], userId?: string): Promise<number> {
  let written = 0;
  for (const stub of await objects(userId)) {
    written += await runInDurableObject(stub, (_instance, state) => {
      const cursor = state.storage.sql.exec(sql, ...values(args));
      cursor.toArray();
      return cursor.rowsWritten;
    });
  }
  return written;
}

/** The user's object, for calling its methods directly (another isolate's write, a check). */
export const sessionsObject = (userId: string) => env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId));

/** A USER_SESSIONS binding whose object throws on every call (unreachable, overloaded, broken); `calls` records them. */
export function failingSessions(calls: string[] = []): UserSessionsNamespace {
  const fail = (name: string) => async () => {
    calls.push(name);
    throw new Error('Durable Object is overloaded');
  };
  const methods = ['create', 'find', 'rotate', 'stepUp', 'end', 'endAll', 'withLiveTokens', 'list', 'isRevoked', 'forget'];
  const double = {
    idFromName: (name: string) => env.USER_SESSIONS.idFromName(name),
    get: () => Object.fromEntries(methods.map((m) => [m, fail(m)])),
  };
  // A test double: only what storage/sessions.ts calls is there.
  return double as unknown as UserSessionsNamespace;
}

/**
 * The USER_SESSIONS binding, but `before` runs (once) just before the first session is stored:
 * a claim lands exactly between a sign-in's checks and its write to the object.
 */
export function claimBeforeCreate(before: () => Promise<unknown>): UserSessionsNamespace {
  const ns = env.USER_SESSIONS;
  let fired = false;
  const double = {
    idFromName: (name: string) => ns.idFromName(name),
    get: (id: DurableObjectId) => {
      const stub = ns.get(id);
      return new Proxy(stub, {
        get(target, prop) {
          if (prop === 'create') {
            return async (...args: Parameters<typeof stub.create>) => {
              if (!fired) {
                fired = true;
                await before();
              }
              return target.create(...args);
            };
          }
          if (prop === 'then') return undefined;
          // Every other property of a stub is a remote method: call it on the stub itself.
          return (...args: unknown[]) => Reflect.apply(Reflect.get(target, prop) as (...a: unknown[]) => unknown, target, args);
        },
      });
    },
  };
  // A test double: only what storage/sessions.ts calls is there.
  return double as unknown as UserSessionsNamespace;
}

/** The USER_SESSIONS binding, recording in `calls` every method called on any object (and `get`, each time a stub is made). */
export function recordingSessions(calls: string[]): UserSessionsNamespace {
  const ns = env.USER_SESSIONS;
  const double = {
    idFromName: (name: string) => ns.idFromName(name),
    get: (id: DurableObjectId) => {
      calls.push('get');
      const stub = ns.get(id);
      return new Proxy(stub, {
        get(target, prop) {
          if (prop === 'then') return undefined;
          return (...args: unknown[]) => {
            calls.push(String(prop));
            return Reflect.apply(Reflect.get(target, prop) as (...a: unknown[]) => unknown, target, args);
          };
        },
      });
    },
  };
  // A test double: only what storage/sessions.ts calls is there.
  return double as unknown as UserSessionsNamespace;
}
