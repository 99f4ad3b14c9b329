// Types for scripts/bundle-size.mjs (imported by test/build/bundle-budget.test.ts).
export interface DeployedBundle {
  bytes: number;
  gzip: number;
  wranglerGzipKiB: number | null;
  /** `text`: the source of JavaScript modules, null for others. */
  modules: { name: string; bytes: number; gzip: number; text: string | null }[];
}
export function deployedBundle(): DeployedBundle;
