// Types of deploy.mjs, for its tests.
import type { Readable, Writable } from 'node:stream';

export declare class DeployError extends Error {}

export interface WranglerRunner {
  capture(args: string[], input?: string): { code: number; stdout: string; stderr: string };
  stream(args: string[]): Promise<{ code: number }>;
}

export declare function wranglerRunner(options: { cwd: string; env?: NodeJS.ProcessEnv; stdout?: Writable }): WranglerRunner;
export declare function developmentReasons(vars: Record<string, unknown>, publicUrl: string): string[];
export declare function migratedClasses(migrations?: object[]): Set<string>;

/** Runs the walk-through; resolves to the exit code, rejects with a DeployError on a refusal or a failed step. */
export declare function deploy(
  argv: string[],
  io?: { stdin?: Readable & { isTTY?: boolean }; stdout?: Writable & { isTTY?: boolean }; env?: NodeJS.ProcessEnv; cwd?: string; runner?: WranglerRunner },
): Promise<number>;
