/**
 * "What does a request do before it answers?" for answers that must not reveal accounts: the
 * request runs against a D1 binding that holds back every write (INSERT, UPDATE, DELETE,
 * REPLACE, alone or in a batch) until the test releases them. A request that answers while its
 * writes are held did none of them before its answer; one that waits for a write does not
 * answer until the release, and {@link answerWhileWritesHeld} reports that.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import worker from '../../../src/index';
import { PUBLIC_URL, type TestEnv } from './helpers';

const ORIGINAL = Symbol('original statement');
const isWrite = (sql: string) => /^\s*(insert|update|delete|replace)\b/i.test(sql);

function heldDb(db: D1Database, gate: Promise<void>, held: string[]): D1Database {
  const sqlOf = new WeakMap<object, string>();
  const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const wrapped = new Proxy(statement, {
      get(target, prop) {
        if (prop === ORIGINAL) return target;
        if (prop === 'bind') return (...values: unknown[]) => wrap(target.bind(...values), sql);
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (isWrite(sql) && (prop === 'run' || prop === 'first' || prop === 'all' || prop === 'raw')) {
          return async (...args: unknown[]) => {
            held.push(sql);
            await gate;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    sqlOf.set(wrapped, sql);
    return wrapped;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === 'batch') {
        return async (statements: D1PreparedStatement[]) => {
          const originals = statements.map((s) => (s as unknown as Record<symbol, D1PreparedStatement>)[ORIGINAL] ?? s);
          const writes = statements.map((s) => sqlOf.get(s) ?? '').filter(isWrite);
          if (writes.length > 0) {
            held.push(...writes);
            await gate;
          }
          return target.batch(originals);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * Sends a JSON POST to the Worker with D1 writes held. Resolves with the answer, or null if none
 * came within `ms` (`waitedFor` names the held writes it was waiting on); either way they are then
 * released and the request's background work (`waitUntil`) is waited for, so the test can check
 * what happened after the answer.
 */
export async function answerWhileWritesHeld(
  testEnv: TestEnv,
  path: string,
  json: unknown,
  ms = 2000,
): Promise<{ response: Response | null; waitedFor: string[] }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const held: string[] = [];
  const ctx = createExecutionContext();
  const request = new Request(new URL(path, PUBLIC_URL), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': '203.0.113.7' },
    body: JSON.stringify(json),
  });
  const answered = worker.fetch(request, { ...testEnv, DB: heldDb(testEnv.DB, gate, held) } as never, ctx);
  const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), ms));
  const response = await Promise.race([answered, timeout]);
  const waitedFor = response === null ? [...held] : [];
  release();
  await answered;
  await waitOnExecutionContext(ctx);
  return { response, waitedFor };
}
