// Types for scripts/bundle-size.mjs (imported by test/build/bundle-budget.test.ts).
export interface DeployedBundle {
  bytes: number;
  gzip: number;
  wranglerGzipKiB: number | null;
  modules: { name: string; bytes: number; gzip: number }[];
}
export function deployedBundle(): DeployedBundle;
