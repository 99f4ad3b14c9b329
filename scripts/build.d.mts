// Types for scripts/build.mjs (imported by test/build/bundle-budget.test.ts).
import type { Metafile } from 'esbuild';

export const root: string;
export const distDir: string;
/** The Worker's build in memory: every module, source map and text module of dist/, by name. */
export function buildWorker(): Promise<{ files: { name: string; contents: Uint8Array }[]; metafile: Metafile }>;
/** The same build written to dist/ (atomically per file); returns what it wrote. */
export function writeDist(): Promise<{ name: string; contents: Uint8Array }[]>;
