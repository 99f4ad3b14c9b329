// What every bench script needs to measure workerd alike: its CPU time from /proc, a free
// loopback port, and a peer Worker bundled the same way.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Clock ticks a second, the unit of utime and stime in /proc/<pid>/stat. */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** User plus system CPU time of a process so far, in ms (all its threads). */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Applies migrations/*.sql to a local D1 database in order, statement by statement (they hold no triggers). */
export async function applyMigrations(db) {
  const dir = join(here, '..', '..', 'migrations');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    const sql = readFileSync(join(dir, file), 'utf8').replace(/^\s*--.*$/gm, '');
    for (const statement of sql.split(/;\s*$/m).map((x) => x.trim()).filter(Boolean)) await db.prepare(statement).run();
  }
}

/** A port nothing listens on right now, on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Bundles scripts/bench/workers/<entry> into `<dir>/<name>.js` as workerd loads it; returns the path. */
export async function bundleWorker(entry, name, dir) {
  const outfile = join(dir, `${name}.js`);
  await build({
    entryPoints: [join(here, 'workers', entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    target: 'es2022',
    minify: true,
    outfile,
    logLevel: 'error',
  });
  return outfile;
}
