#!/usr/bin/env node
// `npm run bundle:report`: what the deployed bundle weighs, and what each input costs in it.
//
// 1. The bundle as deployed: `wrangler deploy --dry-run --outdir` (minify from wrangler.toml),
//    gzip of all uploaded modules together, the way wrangler counts its "Total Upload" line.
// 2. Where the bytes come from: the entry bundled again with esbuild the way wrangler does it
//    (esm, minified, workerd conditions, cloudflare:* and node:* external, text modules as
//    separate modules) with a metafile, summed per npm package and per source folder.
//    esbuild's figures are minified bytes before gzip; gzip shares context across modules, so
//    per-input gzip cannot be known exactly: the share of the minified bytes is a fair proxy.
//
//   npm run bundle:report              the report
//   npm run bundle:report -- --json    the same as one JSON object
//   npm run bundle:report -- --startup 3   also `wrangler check startup` 3 times: start-up active
//                                      CPU, lowest and all runs (one run on a busy machine says little)
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// wrangler's own esbuild (a dependency of wrangler, hoisted): the same bundler as a deploy.
import { build } from 'esbuild';
import { deployedBundle, runWrangler } from './bundle-size.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KIB = 1024;

/** esbuild metafile of the entry, built as wrangler builds it. */
async function metafile() {
  const result = await build({
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    format: 'esm',
    minify: true,
    write: false,
    outdir: join(tmpdir(), 'gatehouse-metafile'),
    splitting: true,
    platform: 'neutral',
    target: 'es2024',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*', '*.txt'],
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx',
    metafile: true,
    logLevel: 'silent',
  });
  return result.metafile;
}

function groupOf(path) {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1];
  const src = /^src\/([^/]+)\//.exec(path);
  return src ? `src/${src[1]}/` : path;
}

const json = process.argv.includes('--json');
const startupIndex = process.argv.indexOf('--startup');
const startupRuns = startupIndex < 0 ? 0 : Number(process.argv[startupIndex + 1] ?? 3);

/** Active CPU ms of one `wrangler check startup` (the module's evaluation in a local workerd). */
function startupActiveMs() {
  const profile = join(tmpdir(), `gatehouse-startup-${process.pid}.cpuprofile`);
  try {
    const out = runWrangler(['check', 'startup', '--outfile', profile]);
    const active = /Active: ([\d.]+) ms/.exec(out);
    if (!active) throw new Error(`no "Active:" line in wrangler check startup's output:\n${out}`);
    return Number(active[1]);
  } finally {
    rmSync(profile, { force: true });
  }
}

const deployed = deployedBundle();
const meta = await metafile();

const inputs = [];
const outputs = [];
for (const [file, out] of Object.entries(meta.outputs)) {
  outputs.push({ file: file.replace(/^.*gatehouse-metafile\//, ''), bytes: out.bytes, entry: Boolean(out.entryPoint) });
  for (const [path, { bytesInOutput }] of Object.entries(out.inputs)) inputs.push({ path, bytes: bytesInOutput });
}
const total = inputs.reduce((s, i) => s + i.bytes, 0);
const groups = new Map();
for (const i of inputs) groups.set(groupOf(i.path), (groups.get(groupOf(i.path)) ?? 0) + i.bytes);
const byGroup = [...groups].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
const byInput = inputs.sort((a, b) => b.bytes - a.bytes);

const startup = Array.from({ length: startupRuns }, startupActiveMs);

if (json) {
  console.log(JSON.stringify({ startup, deployed: { ...deployed, modules: deployed.modules.map(({ text, ...m }) => m) }, byGroup, byInput: byInput.slice(0, 40), outputs }, null, 2));
} else {
  const kib = (n) => (n / KIB).toFixed(1).padStart(6);
  const pct = (n) => `${((n / total) * 100).toFixed(1).padStart(5)} %`;
  console.log(`Deployed bundle (wrangler deploy --dry-run): ${kib(deployed.bytes)} KiB, gzip ${kib(deployed.gzip)} KiB`
    + (deployed.wranglerGzipKiB === null ? '' : ` (wrangler says ${deployed.wranglerGzipKiB} KiB)`));
  for (const m of deployed.modules) console.log(`  ${m.name}: ${kib(m.bytes)} KiB, gzip ${kib(m.gzip)} KiB`);
  if (startup.length) console.log(`Start-up active CPU (wrangler check startup): lowest ${Math.min(...startup)} ms of ${startup.join(', ')} ms`);
  console.log(`\nesbuild metafile (minified bytes, before gzip), ${kib(total)} KiB in ${outputs.length} chunk(s):`);
  console.log('\nBy package / source folder:');
  for (const g of byGroup) console.log(`  ${kib(g.bytes)} KiB ${pct(g.bytes)}  ${g.name}`);
  console.log('\nTop 25 inputs:');
  for (const i of byInput.slice(0, 25)) console.log(`  ${kib(i.bytes)} KiB ${pct(i.bytes)}  ${i.path}`);
}
