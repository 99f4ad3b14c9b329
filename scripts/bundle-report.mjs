#!/usr/bin/env node
// `npm run bundle:report`: what the deployed Worker weighs, what start-up evaluates of it, and
// what each input costs.
//
// 1. The Worker as deployed: `wrangler deploy --dry-run --outdir` (which runs scripts/build.mjs,
//    wrangler.toml's `[build] command`), gzip of all uploaded modules together, the way wrangler
//    counts its "Total Upload" line, and of the start-up modules (the main module and the
//    chunks it imports statically; the rest is loaded by dynamic `import()` on first use).
// 2. Where the bytes come from: the same build's esbuild metafile, summed per npm package and
//    per source folder, for the start-up modules and for all. esbuild's figures are minified
//    bytes before gzip; gzip shares context across modules, so per-input gzip cannot be known
//    exactly: the share of the minified bytes is a fair proxy.
//
//   npm run bundle:report              the report
//   npm run bundle:report -- --json    the same as one JSON object
//   npm run bundle:report -- --startup 3   also `wrangler check startup` 3 times: start-up active
//                                      CPU, lowest and all runs (one run on a busy machine says little)
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWorker } from './build.mjs';
import { deployedBundle, runWrangler } from './bundle-size.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KIB = 1024;

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
const { metafile: meta } = await buildWorker();

const moduleName = (path) => path.replace(/^.*dist\//, '');
const outputs = Object.entries(meta.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .map(([file, out]) => ({ file: moduleName(file), bytes: out.bytes, startup: deployed.startup.modules.includes(moduleName(file)) }));

/** Minified bytes per input over the given outputs, per input and per package / source folder. */
function costs(filter) {
  const inputs = [];
  for (const [file, out] of Object.entries(meta.outputs)) {
    if (!file.endsWith('.js') || !filter(moduleName(file))) continue;
    for (const [path, { bytesInOutput }] of Object.entries(out.inputs)) inputs.push({ path, bytes: bytesInOutput });
  }
  const total = inputs.reduce((s, i) => s + i.bytes, 0);
  const groups = new Map();
  for (const i of inputs) groups.set(groupOf(i.path), (groups.get(groupOf(i.path)) ?? 0) + i.bytes);
  const byGroup = [...groups].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { total, byGroup, byInput: inputs.sort((a, b) => b.bytes - a.bytes) };
}
const all = costs(() => true);
const atStartup = costs((name) => deployed.startup.modules.includes(name));
const { total } = all;
const { byGroup, byInput } = all;

const startup = Array.from({ length: startupRuns }, startupActiveMs);

if (json) {
  console.log(JSON.stringify({
    startup,
    deployed: { ...deployed, modules: deployed.modules.map(({ text, ...m }) => m) },
    startupByGroup: atStartup.byGroup,
    byGroup,
    byInput: byInput.slice(0, 40),
    outputs,
  }, null, 2));
} else {
  const kib = (n) => (n / KIB).toFixed(1).padStart(6);
  const pct = (n, of) => `${((n / of) * 100).toFixed(1).padStart(5)} %`;
  console.log(`Deployed (wrangler deploy --dry-run): ${deployed.modules.length} modules, ${kib(deployed.bytes)} KiB, gzip ${kib(deployed.gzip)} KiB`
    + (deployed.wranglerGzipKiB === null ? '' : ` (wrangler says ${deployed.wranglerGzipKiB} KiB)`));
  console.log(`Start-up modules (${deployed.startup.modules.join(', ')}): ${kib(deployed.startup.bytes)} KiB, gzip ${kib(deployed.startup.gzip)} KiB`);
  for (const m of deployed.modules) console.log(`  ${deployed.startup.modules.includes(m.name) ? '*' : ' '} ${m.name}: ${kib(m.bytes)} KiB, gzip ${kib(m.gzip)} KiB`);
  console.log('  (* evaluated at start-up; the others on first use)');
  if (startup.length) console.log(`Start-up active CPU (wrangler check startup): lowest ${Math.min(...startup)} ms of ${startup.join(', ')} ms`);
  console.log(`\nesbuild metafile (minified bytes, before gzip), ${kib(total)} KiB in ${outputs.length} module(s), ${kib(atStartup.total)} KiB at start-up.`);
  console.log('\nStart-up modules, by package / source folder:');
  for (const g of atStartup.byGroup) console.log(`  ${kib(g.bytes)} KiB ${pct(g.bytes, atStartup.total)}  ${g.name}`);
  console.log('\nAll modules, by package / source folder:');
  for (const g of byGroup) console.log(`  ${kib(g.bytes)} KiB ${pct(g.bytes, total)}  ${g.name}`);
  console.log('\nTop 25 inputs:');
  for (const i of byInput.slice(0, 25)) console.log(`  ${kib(i.bytes)} KiB ${pct(i.bytes, total)}  ${i.path}`);
}
