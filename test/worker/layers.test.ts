/**
 * Layers point one way (routes -> auth/proxy -> tokens/storage): storage never imports what
 * sits above it or anything HTTP, http/ never imports auth/, and SQL lives only in storage/.
 * Read from the source text (Vite inlines it at build time), so a new file is checked too.
 */
import { describe, expect, it } from 'vitest';

const sources = import.meta.glob<string>('../../src/**/*.{ts,tsx}', { query: '?raw', import: 'default', eager: true });
const files = Object.entries(sources).map(([path, text]) => ({ path: path.replace('../../src/', ''), text }));

/** The src/ folders a file imports from (`../x/...` from a folder one level down). */
function importedFolders(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+'\.\.\/([a-z-]+)\//gm)].map((m) => m[1]!);
}

function offenders(folder: string, forbidden: string[]): string[] {
  return files
    .filter((f) => f.path.startsWith(`${folder}/`))
    .flatMap((f) => importedFolders(f.text).filter((d) => forbidden.includes(d)).map((d) => `${f.path} imports ${d}/`));
}

describe('layers', () => {
  it('sees the source tree', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.some((f) => f.path === 'storage/revocation.ts')).toBe(true);
  });

  it('storage/ imports nothing above it and nothing HTTP', () => {
    expect(offenders('storage', ['http', 'tokens', 'auth', 'middleware', 'routes', 'proxy', 'providers', 'scheduled', 'ui', 'keys', 'origin'])).toEqual([]);
  });

  it('http/ does not import auth/ (or anything above it)', () => {
    expect(offenders('http', ['auth', 'routes', 'middleware', 'proxy', 'providers', 'scheduled', 'ui'])).toEqual([]);
  });

  it('util/ imports nothing of the app', () => {
    expect(files.filter((f) => f.path.startsWith('util/') && /from '\.\.?\//.test(f.text)).map((f) => f.path)).toEqual([]);
  });

  it('SQL and D1 statements live only in storage/', () => {
    const sql = /\.prepare\(|\.batch\(|\b(SELECT|INSERT INTO|DELETE FROM)\b|\bUPDATE \w+ SET\b/;
    expect(files.filter((f) => !f.path.startsWith('storage/') && sql.test(f.text)).map((f) => f.path)).toEqual([]);
  });
});
