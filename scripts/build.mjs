#!/usr/bin/env node
// The Worker's build: src/index.ts -> dist/, a set of ES modules that wrangler uploads as they
// are (wrangler.toml: `no_bundle`, `find_additional_modules`, an ESModule rule). wrangler runs
// it itself (`[build] command`) before `wrangler dev`, `wrangler deploy` and
// `wrangler check startup`, and again on every change under src/ while `wrangler dev` runs.
//
// Why not wrangler's own bundler: it emits one module, so code behind a dynamic `import()` is
// still compiled and evaluated by every isolate at start-up. esbuild with `splitting` puts each
// lazily imported part (pages, OAuth, passwords, admin, account, ...) in chunks of its own that
// are loaded on the first request that needs them; dist/index.js and the chunks it imports
// statically are all that start-up evaluates. The options otherwise follow wrangler's (esm,
// es2024, workerd conditions, `cloudflare:*` and `node:*` left to the runtime, minified,
// no keep_names, linked source maps).
//
//   node scripts/build.mjs           build dist/
//   buildWorker({ write: false })    the same build in memory, with its metafile
//                                    (scripts/bundle-report.mjs)
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const distDir = join(root, 'dist');

/**
 * Text modules (the common-word list) stay separate Text modules, as wrangler uploads them:
 * no JavaScript to parse, and loaded only by the chunk that imports them. Every output sits at
 * the top of dist/, so the import becomes `./<file name>`; `found` collects the files to copy.
 */
function textModules(found) {
  return {
    name: 'text-modules',
    setup(b) {
      b.onResolve({ filter: /\.txt$/ }, (args) => {
        const path = join(args.resolveDir, args.path);
        const name = basename(path);
        if (found.has(name) && found.get(name) !== path) throw new Error(`two text modules named ${name}`);
        found.set(name, path);
        return { path: `./${name}`, external: true };
      });
    },
  };
}

/** esbuild's result for the Worker: every chunk, source map and text module, in memory. */
export async function buildWorker() {
  const texts = new Map();
  const result = await build({
    absWorkingDir: root,
    entryPoints: { index: join(root, 'src/index.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    target: 'es2024',
    supported: { 'import-source': true, using: true },
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    define: { 'process.env.NODE_ENV': '"production"', 'navigator.userAgent': '"Cloudflare-Workers"' },
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx',
    minify: true,
    keepNames: false,
    sourcemap: 'linked',
    chunkNames: '[name]-[hash]',
    outdir: distDir,
    write: false,
    metafile: true,
    plugins: [textModules(texts)],
    logLevel: 'warning',
  });
  const files = result.outputFiles.map((f) => ({ name: relative(distDir, f.path), contents: f.contents }));
  for (const [name, path] of texts) files.push({ name, contents: readFileSync(path) });
  return { files, metafile: result.metafile };
}

/**
 * Writes the build to dist/. Several `wrangler dev` may build at once (the e2e tests start
 * two): each file is written under a temporary name and renamed into place (atomic), and only
 * then are files of earlier builds removed, so a reader never sees a half-written module.
 */
export async function writeDist() {
  const { files } = await buildWorker();
  mkdirSync(distDir, { recursive: true });
  for (const f of files) {
    const tmp = join(distDir, `.${f.name}.${process.pid}.tmp`);
    writeFileSync(tmp, f.contents);
    renameSync(tmp, join(distDir, f.name));
  }
  const keep = new Set(files.map((f) => f.name));
  for (const name of readdirSync(distDir)) {
    if (!keep.has(name) && !name.endsWith('.tmp')) rmSync(join(distDir, name), { force: true });
  }
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const files = await writeDist();
  const js = files.filter((f) => f.name.endsWith('.js'));
  console.log(`dist/: ${js.length} modules, ${(js.reduce((s, f) => s + f.contents.length, 0) / 1024).toFixed(1)} KiB`);
}
