/**
 * Global setup of the e2e project (runs in Node): the D1 migrations are applied once, to a
 * state folder that every gateway of the run starts from a copy of (test/e2e/harness.ts).
 */
import { rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { migratedState } from '../../scripts/lib/gateway.mjs';

export default async function setup(project: TestProject) {
  const migrated = await migratedState();
  project.provide('migratedState', migrated);
  return () => rmSync(migrated, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    migratedState: string;
  }
}
