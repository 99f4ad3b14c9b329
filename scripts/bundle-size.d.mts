// Types for scripts/bundle-size.mjs (imported by test/build/bundle-budget.test.ts).
export interface DeployedModule {
  name: string;
  bytes: number;
  gzip: number;
  /** The source of JavaScript modules, null for others. */
  text: string | null;
}
export interface DeployedBundle {
  bytes: number;
  gzip: number;
  wranglerGzipKiB: number | null;
  /** The modules start-up evaluates (the main module and its static imports, transitively). */
  startup: { modules: string[]; bytes: number; gzip: number };
  modules: DeployedModule[];
}
export const MAIN_MODULE: string;
export function staticImports(text: string): string[];
export function staticNodeImports(text: string): string[];
export function startupModules(modules: DeployedModule[], main?: string): string[];
export function deployedBundle(): DeployedBundle;
