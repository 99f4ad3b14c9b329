// The Worker exactly as `wrangler deploy` would upload it (dist/, built by scripts/build.mjs
// through wrangler.toml's `[build] command`), its size the way wrangler counts it, and which of
// its modules start-up evaluates. Shared by scripts/bundle-report.mjs, the bench and the bundle
// budget (test/build/).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const MAIN_MODULE = 'index.js';

/** Runs this project's wrangler quietly (no metrics, no colour) and returns its stdout. */
export function runWrangler(args) {
  return execFileSync('npx', ['wrangler', ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', FORCE_COLOR: '0' },
  });
}

/**
 * Relative modules a minified ES module imports statically (`import … from"./x.js"`,
 * `import"./x.js"`, `export … from"./x.js"`); not `import("./x.js")`, which loads on use.
 */
export function staticImports(text) {
  const found = new Set();
  for (const m of text.matchAll(/(?:^|[;})\s])(?:import|export)\s*(?:[\w$*{}\s,]*?\s*from\s*)?["'](\.\/[^"']+)["']/g)) found.add(m[1].slice(2));
  return [...found];
}

/** `node:` modules imported statically (`import … from"node:x"`, `import"node:x"`). */
export function staticNodeImports(text) {
  return [...text.matchAll(/(?:^|[;})\s])(?:import|export)\s*(?:[\w$*{}\s,]*?\s*from\s*)?["'](node:[^"']+)["']/g)].map((m) => m[1]);
}

/** The main module and every module it imports statically, transitively: what start-up evaluates. */
export function startupModules(modules, main = MAIN_MODULE) {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    const m = byName.get(name);
    if (!m) throw new Error(`${name} is imported but not uploaded`);
    seen.add(name);
    for (const dep of m.text === null ? [] : staticImports(m.text)) visit(dep);
  };
  visit(main);
  return [...seen];
}

/**
 * Builds what `wrangler deploy` would upload; returns its modules and sizes.
 * `gzip` is gzip (default level) of all modules but source maps, concatenated: what wrangler
 * prints as "Total Upload ... gzip" (`wranglerGzipKiB`, parsed from its output). `startup` is
 * the same measure over the modules start-up evaluates (the main module and its static imports).
 */
export function deployedBundle() {
  const out = mkdtempSync(join(tmpdir(), 'gatehouse-bundle-'));
  try {
    const log = runWrangler(['deploy', '--dry-run', '--outdir', out]);
    // Every uploaded module: not the source maps, not wrangler's README about the folder.
    const files = readdirSync(out)
      .filter((f) => !f.endsWith('.map') && f !== 'README.md')
      .sort((a, b) => (a === MAIN_MODULE ? -1 : b === MAIN_MODULE ? 1 : a.localeCompare(b)))
      .map((name) => ({ name, bytes: readFileSync(join(out, name)) }));
    const modules = files.map((m) => ({
      name: m.name,
      bytes: m.bytes.length,
      gzip: gzipSync(m.bytes).length,
      text: m.name.endsWith('.js') ? m.bytes.toString('utf8') : null,
    }));
    const startup = startupModules(modules);
    const startupBytes = Buffer.concat(files.filter((f) => startup.includes(f.name)).map((f) => f.bytes));
    const all = Buffer.concat(files.map((m) => m.bytes));
    const reported = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(log);
    return {
      bytes: all.length,
      gzip: gzipSync(all).length,
      wranglerGzipKiB: reported ? Number(reported[2]) : null,
      startup: { modules: startup, bytes: startupBytes.length, gzip: gzipSync(startupBytes).length },
      modules,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
