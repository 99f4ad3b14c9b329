/// <reference types="vite/client" />
/**
 * The layer rules of docs/design.md ("Layers and imports"), checked over the source text of
 * every module in src/: each relative import points only where docs/layers.json allows, D1
 * statements stay in storage/, and a restricted package stays in its one wrapper module.
 * docs/layers.json is the one copy of the rules; the design document's table must match it.
 *
 * workerd has no file system: Vite bundles the sources as text at test build time.
 */
import { describe, expect, it } from 'vitest';
import layers from '../../../docs/layers.json';

const sources = import.meta.glob('../../../src/**/*.{ts,tsx}', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const originPackage = import.meta.glob('../../../packages/verify/src/**/*.ts', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const docs = import.meta.glob('../../../docs/design.md', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

const rules: Record<string, readonly string[]> = layers.parts;

/** `../../../src/auth/sessions.ts` -> `auth/sessions`; `../../../src/env.ts` -> `env`. */
function moduleId(globKey: string): string {
  return globKey.replace(/^\.\.\/\.\.\/\.\.\/src\//, '').replace(/(\.d)?\.tsx?$/, '');
}

/** The part of src/ a module belongs to: its top folder in src/, or the file itself at the top. */
const partOf = (id: string): string => id.split('/')[0]!;

const modules = Object.entries(sources).map(([key, text]) => ({ file: `src/${moduleId(key)}${key.slice(key.lastIndexOf('.'))}`, id: moduleId(key), text }));

/**
 * Module specifiers of static imports and re-exports (also spread over several lines), of
 * side-effect imports and of dynamic `import()`. Only statements at the start of a line count,
 * so an `@example` in a comment (` * import … from …`) is not taken for an import.
 */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const re of [/^[ \t]*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm, /^[ \t]*import\s*['"]([^'"]+)['"]/gm, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of text.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** Resolves a relative specifier against a module id: `auth/sessions` + `../http/errors` -> `http/errors`. */
function resolve(from: string, specifier: string): string {
  const parts = from.split('/').slice(0, -1);
  for (const seg of specifier.split('/')) {
    if (seg === '..') parts.pop();
    else if (seg !== '.') parts.push(seg);
  }
  return parts.join('/').replace(/(\.d)?\.tsx?$/, '');
}

const allows = (entries: readonly string[], target: string) =>
  entries.some((e) => e === '*' || e === partOf(target) || e === target);

describe('layers (docs/layers.json)', () => {
  it('classifies every part of src/, and names no part that does not exist', () => {
    const parts = [...new Set(modules.map((m) => partOf(m.id)))].sort();
    expect(parts.filter((p) => !(p in rules)), 'parts of src/ missing from docs/layers.json').toEqual([]);
    expect(Object.keys(rules).filter((p) => !parts.includes(p)), 'parts in docs/layers.json that src/ no longer has').toEqual([]);
  });

  it('reads the imports it checks (the parser is not blind)', () => {
    const app = modules.find((m) => m.id === 'app')!;
    expect(specifiers(app.text)).toContain('./routes/verify');
    const gate = modules.find((m) => m.id === 'proxy/gate')!;
    expect(specifiers(gate.text).map((s) => resolve('proxy/gate', s))).toContain('proxy/route-table');
    // A multi-line import and an @example in a comment.
    expect(specifiers("import {\n  a,\n  b,\n} from '../x/y';\n/**\n * import { c } from '../z/w';\n */")).toEqual(['../x/y']);
  });

  it('every relative import goes only to a part its own part may import', () => {
    const violations: string[] = [];
    for (const m of modules) {
      const own = partOf(m.id);
      const allowed = rules[own] ?? [];
      for (const spec of specifiers(m.text)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(m.id, spec);
        if (partOf(target) === own) continue;
        if (!allows(allowed, target)) {
          violations.push(`${m.file} imports src/${target} ('${spec}'): ${own} may import ${allowed.length ? allowed.join(', ') : 'no other part'}`);
        }
      }
    }
    expect(violations, 'imports against the layer table (docs/design.md, "Layers and imports")').toEqual([]);
  });

  it('keeps D1 statements (.prepare( and SQL) in storage/ only', () => {
    const sql = /\.prepare\(|\b(SELECT\s+[\w*]|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|DROP\s+TABLE)\b/;
    const violations = modules
      .filter((m) => !layers.sql.onlyIn.includes(partOf(m.id)))
      .flatMap((m) =>
        m.text
          .split('\n')
          .map((line, i) => ({ line, i }))
          .filter(({ line }) => sql.test(line))
          .map(({ line, i }) => `${m.file}:${i + 1} holds SQL outside ${layers.sql.onlyIn.join(', ')}/: ${line.trim().slice(0, 100)}`),
      );
    expect(violations, 'SQL outside storage/').toEqual([]);
  });

  it('imports each restricted package only from its wrapper module', () => {
    // Every entry but `$comment`: package name -> the modules that may import it.
    const restricted = Object.entries(layers.packages).flatMap(([name, allowed]) => (Array.isArray(allowed) ? [{ name, allowed }] : []));
    expect(restricted.map((r) => r.name)).toContain('arctic');
    const violations: string[] = [];
    for (const m of modules) {
      for (const spec of specifiers(m.text)) {
        const rule = restricted.find((r) => spec === r.name || spec.startsWith(`${r.name}/`));
        if (rule && !rule.allowed.includes(m.id)) violations.push(`${m.file} imports '${spec}': only ${rule.allowed.join(', ')} may`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps the origin package (packages/verify) free of the gateway: its own modules and the listed packages only', () => {
    const files = Object.keys(originPackage);
    expect(files.map((f) => f.replace('../../../', '')).sort()).toContain('packages/verify/src/index.ts');
    const allowed: readonly string[] = layers.originPackage.imports;
    const violations: string[] = [];
    for (const [file, text] of Object.entries(originPackage)) {
      for (const spec of specifiers(text)) {
        const own = /^\.\/[\w-]+\.js$/.test(spec);
        const pkg = allowed.some((name) => spec === name || spec.startsWith(`${name}/`));
        if (!own && !pkg) violations.push(`${file.replace('../../../', '')} imports '${spec}': only ./<module>.js and ${allowed.join(', ')}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('is mirrored exactly by the table in docs/design.md', () => {
    const doc = docs['../../../docs/design.md'];
    expect(doc, 'docs/design.md exists').toBeTypeOf('string');
    const section = doc!.split(/^## /m).find((s) => s.startsWith('Layers and imports'));
    expect(section, 'docs/design.md has a "## Layers and imports" section').toBeTypeOf('string');
    // Rows `| \`auth/\` | what it holds | \`env\`, \`http\` … |`: the first cell names the part,
    // the last lists what it may import (none: no backticks; anything: `*`).
    const documented: Record<string, string[]> = {};
    for (const line of section!.split('\n')) {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      const name = /^`([^`]+?)\/?`$/.exec(cells[0] ?? '')?.[1];
      if (!name || cells.length < 3) continue;
      documented[name.replace(/(\.d)?\.tsx?$/, '')] = [...cells[cells.length - 1]!.matchAll(/`([^`]+?)\/?`/g)].map((x) => x[1]!).sort();
    }
    const expected = Object.fromEntries(Object.entries(rules).map(([part, list]) => [part, [...list].sort()]));
    expect(documented).toEqual(expected);
  });
});
