/**
 * Global setup of the e2e project (runs in Node): the D1 migrations are applied once, to a
 * state folder that every gateway of the run starts from a copy of (test/e2e/harness.ts); and
 * the origin package `@gatehouse/verify` is built (packages/verify/build.mjs, about a second)
 * and linked into test/e2e/node_modules, as npm workspaces would link it, so that the origins
 * of these tests import it by its name, through its exports map, as built JavaScript.
 */
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildVerifyPackage } from '../../packages/verify/build.mjs';
import { migratedState } from '../../scripts/lib/gateway.mjs';

const VERIFY_PACKAGE = resolve('packages/verify');
const VERIFY_LINK = resolve('test/e2e/node_modules/@gatehouse/verify');

/** test/e2e/node_modules/@gatehouse/verify -> packages/verify, replaced whole if it points elsewhere. */
function linkVerifyPackage(): void {
  const target = relative(dirname(VERIFY_LINK), VERIFY_PACKAGE);
  try {
    if (readlinkSync(VERIFY_LINK) === target) return;
  } catch {
    // No link yet.
  }
  mkdirSync(dirname(VERIFY_LINK), { recursive: true });
  const fresh = `${VERIFY_LINK}.${process.pid}`;
  rmSync(fresh, { force: true });
  symlinkSync(target, fresh, 'dir');
  renameSync(fresh, VERIFY_LINK);
}

export default async function setup(project: TestProject) {
  buildVerifyPackage();
  linkVerifyPackage();
  project.provide('verifyPackage', VERIFY_PACKAGE);
  const migrated = await migratedState();
  project.provide('migratedState', migrated);
  return () => rmSync(migrated, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    migratedState: string;
    /** packages/verify, its dist/ freshly built. */
    verifyPackage: string;
  }
}
