/** Starting and stopping the local peers of the interop tests (PyJWT origin, nginx). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stopChild } from '../harness';

/** The absolute path of a system binary, or null when it is not installed (see `missingPeer`). */
export function systemBinary(...candidates: string[]): string | null {
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** True if `python` can import every module named (e.g. PyJWT's `jwt`). */
export function pythonImports(python: string | null, ...modules: string[]): boolean {
  if (!python) return false;
  try {
    execFileSync(python, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * For `describe.skipIf`: true (skip) when a peer is missing on a developer's machine. In CI
 * (CI=true, as .ci/run sets) a missing peer is an error instead, so the run fails rather than
 * passing with the interop tests silently skipped.
 */
export function missingPeer(peer: string, present: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (present) return false;
  if (env.CI === 'true') throw new Error(`${peer} is required when CI=true but is not installed (.ci/run installs it).`);
  return true;
}

export interface Peer {
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Spawns a peer and resolves once `ready(output)` holds (or rejects if it exits first). */
export async function startPeer(cmd: string, args: string[], ready: (output: string) => boolean | Promise<boolean>): Promise<Peer> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const stop = () => stopChild(child);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited early (${child.exitCode}):\n${output}`);
    if (await ready(output)) return { process: child, output: () => output, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`${cmd} did not start:\n${output}`);
}
