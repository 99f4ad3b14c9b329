/// <reference types="vite/client" />
/**
 * The TOTP, QR and recovery-code code (otpauth, uqr and our modules over them) is loaded only by
 * `await import()` in the handlers that use it: no module of src/ imports it statically, so the
 * proxy, forward-auth and token paths never evaluate it. Checked over the source text, as
 * test/worker/codebase/layers.test.ts does for the layer rules.
 */
import { describe, expect, it } from 'vitest';

const sources = import.meta.glob('../../../src/**/*.{ts,tsx}', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

/** Modules that must only ever be imported dynamically (besides each other's own static imports). */
const LAZY = ['otpauth', 'otpauth/bare', 'uqr', 'auth/second-factor', 'auth/totp-code', 'ui/qr-svg', 'ui/second-factor-pages'];

/** Static import specifiers at the start of a line (type-only imports excluded: they vanish). */
function staticImports(text: string): string[] {
  return [...text.matchAll(/^[ \t]*import\s+(?!type\b)[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

const lazyTarget = (spec: string) => LAZY.find((l) => spec === l || spec.endsWith(`/${l}`));

describe('second-factor code is loaded lazily', () => {
  it('no module imports it statically, except the lazy modules among themselves', () => {
    const offenders: string[] = [];
    for (const [file, text] of Object.entries(sources)) {
      const self = file.replace(/^\.\.\/\.\.\/\.\.\/src\//, '').replace(/\.tsx?$/, '');
      if (lazyTarget(self)) continue;
      for (const spec of staticImports(text)) if (lazyTarget(spec)) offenders.push(`${self} imports ${spec}`);
    }
    expect(offenders).toEqual([]);
  });

  it('the handlers do load it dynamically (the check above is not vacuous)', () => {
    const dynamic = Object.values(sources).flatMap((t) => [...t.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!));
    expect(dynamic.filter(lazyTarget).length).toBeGreaterThan(5);
  });
});
