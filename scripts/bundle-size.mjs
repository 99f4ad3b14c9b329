// The Worker bundle exactly as `wrangler deploy` would upload it, and its size the way wrangler
// counts it. Shared by scripts/bundle-report.mjs and the bundle budget (test/build/).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

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
 * Builds what `wrangler deploy` would upload; returns its modules and sizes.
 * `gzip` is gzip (default level) of all modules but source maps, concatenated: what wrangler
 * prints as "Total Upload ... gzip" (`wranglerGzipKiB`, parsed from its output).
 */
export function deployedBundle() {
  const out = mkdtempSync(join(tmpdir(), 'gatehouse-bundle-'));
  try {
    const log = runWrangler(['deploy', '--dry-run', '--outdir', out]);
    // Every uploaded module: not the source map, not wrangler's README about the folder.
    const modules = readdirSync(out)
      .filter((f) => !f.endsWith('.map') && f !== 'README.md')
      .sort((a, b) => (a === 'index.js' ? -1 : b === 'index.js' ? 1 : a.localeCompare(b)))
      .map((name) => ({ name, bytes: readFileSync(join(out, name)) }));
    const all = Buffer.concat(modules.map((m) => m.bytes));
    const reported = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(log);
    return {
      bytes: all.length,
      gzip: gzipSync(all).length,
      wranglerGzipKiB: reported ? Number(reported[2]) : null,
      modules: modules.map((m) => ({
        name: m.name,
        bytes: m.bytes.length,
        gzip: gzipSync(m.bytes).length,
        text: m.name.endsWith('.js') ? m.bytes.toString('utf8') : null,
      })),
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

