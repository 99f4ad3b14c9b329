/**
 * The interop tests' peers (nginx, PyJWT) may be missing on a developer's machine, and those
 * tests then skip; in CI (CI=true) a missing peer must fail the run instead of skipping it.
 */
import { describe, expect, it } from 'vitest';
import { missingPeer, pythonImports } from './interop/processes';

describe('missingPeer', () => {
  it('skips nothing when the peer is present, in CI or not', () => {
    expect(missingPeer('nginx', true, { CI: 'true' })).toBe(false);
    expect(missingPeer('nginx', true, {})).toBe(false);
  });

  it('skips a missing peer outside CI', () => {
    expect(missingPeer('nginx', false, {})).toBe(true);
    expect(missingPeer('nginx', false, { CI: 'false' })).toBe(true);
  });

  it('fails on a missing peer in CI, naming it', () => {
    expect(() => missingPeer('nginx', false, { CI: 'true' })).toThrow(/nginx is required when CI=true/);
  });
});

describe('pythonImports', () => {
  it('is false without a Python, or for a module that does not exist', () => {
    expect(pythonImports(null, 'json')).toBe(false);
    expect(pythonImports('/nonexistent/python3', 'json')).toBe(false);
    expect(pythonImports('/usr/bin/python3', 'no_such_module_gatehouse')).toBe(false);
  });
});
