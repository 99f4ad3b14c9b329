/**
 * Races against a claim, made deterministic: a D1 binding whose first statement with a given SQL
 * prefix (alone or in a batch) runs only after a hook has, so the claim's batch lands exactly
 * between a request's checks and its write.
 */

/**
 * `db`, but the first statement whose SQL starts with `prefix` (alone or in a batch) runs only
 * after `before` has: the claim lands between the request's reads and that write.
 */
export function claimBefore(db: D1Database, prefix: string, before: () => Promise<unknown>): D1Database {
  let fired = false;
  const sqlOf = new WeakMap<object, string>();
  const once = async () => {
    if (fired) return;
    fired = true;
    await before();
  };
  const matches = (sql: string) => sql.trimStart().startsWith(prefix);
  const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const wrapped = new Proxy(statement, {
      get(target, prop) {
        if (prop === 'bind') return (...values: unknown[]) => wrap(target.bind(...values), sql);
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (matches(sql) && (prop === 'run' || prop === 'first' || prop === 'all' || prop === 'raw')) {
          return async (...args: unknown[]) => {
            await once();
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    sqlOf.set(wrapped, sql);
    originals.set(wrapped, statement);
    return wrapped;
  };
  const originals = new WeakMap<object, D1PreparedStatement>();
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === 'batch') {
        return async (statements: D1PreparedStatement[]) => {
          if (statements.some((s) => matches(sqlOf.get(s) ?? ''))) await once();
          return target.batch(statements.map((s) => originals.get(s) ?? s));
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

