/**
 * A stand-in for the `DB` binding that records every statement and where it went: the binding
 * itself (the primary) or a session opened with `withSession` (a replica may serve it), under
 * the constraint or bookmark the session was opened with. Everything runs on the real local D1.
 * `lagging` makes a session answer "no rows" to the statements it matches: a replica that has
 * not caught up yet.
 */
type Fn = (...args: unknown[]) => unknown;

export interface DirectoryStatement {
  /** 'primary', or the argument of `withSession` ('first-unconstrained', 'first-primary', a bookmark). */
  via: string;
  sql: string;
}

export interface RecordingDirectory {
  db: D1Database;
  statements: DirectoryStatement[];
  /** The statements that went through a session opened with anything but 'first-primary'. */
  replicaSql(): string[];
  /** The statements sent to the primary (the binding, or a 'first-primary' session). */
  primarySql(): string[];
}

function laggingStatement(): D1PreparedStatement {
  const none = async () => null;
  const stmt = {
    bind: () => stmt,
    first: none,
    all: async () => ({ results: [], success: true, meta: {} }),
    run: async () => ({ results: [], success: true, meta: {} }),
    raw: async () => [],
  };
  return stmt as unknown as D1PreparedStatement;
}

export function recordingDirectory(real: D1Database, lagging: (sql: string) => boolean = () => false): RecordingDirectory {
  const statements: DirectoryStatement[] = [];
  const recorded = <T extends D1Database | D1DatabaseSession>(target: T, via: string): T =>
    new Proxy(target, {
      get(t, prop) {
        if (prop === 'prepare') {
          return (sql: string) => {
            statements.push({ via, sql });
            return via !== 'primary' && via !== 'first-primary' && lagging(sql) ? laggingStatement() : t.prepare(sql);
          };
        }
        if (prop === 'withSession') {
          return (arg?: string) => recorded((t as D1Database).withSession(arg), arg ?? 'first-unconstrained');
        }
        const value = Reflect.get(t, prop) as unknown;
        return typeof value === 'function' ? (value as Fn).bind(t) : value;
      },
    });
  const onPrimary = (s: DirectoryStatement) => s.via === 'primary' || s.via === 'first-primary';
  return {
    db: recorded(real, 'primary'),
    statements,
    replicaSql: () => statements.filter((s) => !onPrimary(s)).map((s) => s.sql),
    primarySql: () => statements.filter(onPrimary).map((s) => s.sql),
  };
}
