/**
 * Builds the package: `tsc` writes ES modules and their declarations from src/ into a fresh
 * folder, and each file is renamed into dist/ whole, so a test process importing dist/ while
 * another builds never reads a half-written file. Run by `npm pack` / `npm publish` (prepack)
 * and by the tests that use the built package; about a second.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');

export function buildVerifyPackage() {
  const out = mkdtempSync(join(here, '.build-'));
  try {
    const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json'), '--outDir', out], { stdio: 'inherit' });
    mkdirSync(dist, { recursive: true });
    const built = readdirSync(out);
    for (const file of built) renameSync(join(out, file), join(dist, file));
    // Whatever an earlier build left that this one did not write (a removed module) goes.
    for (const file of readdirSync(dist)) if (!built.includes(file)) rmSync(join(dist, file), { force: true });
    return dist;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildVerifyPackage();
