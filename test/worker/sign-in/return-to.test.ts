import { describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../../src/http/return-to';

const config = { PUBLIC_URL: 'https://gate.example.com', ALLOWED_RETURN_ORIGINS: ['https://app.example.com'] };

describe('safeReturnTo', () => {
  it.each([
    ['/dashboard', '/dashboard'],
    ['/a/b?c=d#e', '/a/b?c=d#e'],
    ['https://gate.example.com/x?y=1', '/x?y=1'],
    ['https://app.example.com/home', 'https://app.example.com/home'],
    ['relative/path', '/relative/path'],
  ])('keeps %s', (input, expected) => {
    expect(safeReturnTo(input, config)).toBe(expected);
  });

  it.each([
    '//evil.com',
    '//evil.com/path',
    '///evil.com',
    '/\\evil.com',
    '\\\\evil.com',
    '/%2F%2Fevil.com',
    '/%5Cevil.com',
    '%2F%2Fevil.com',
    '/\tevil.com',
    '/\n/evil.com',
    ' //evil.com',
    'javascript:alert(1)',
    'JavaScript:alert(1)',
    'data:text/html,x',
    'https://evil.com',
    'https://gate.example.com.evil.com/',
    'https://gate.example.com@evil.com/',
    'https://user:pass@gate.example.com/',
    'https://gate.example.com:8443/',
    'http://gate.example.com/',
    'https://app.example.com:444/',
    'https://evil.com/?https://gate.example.com',
    'https://xn--gte-example-9db.com/',
    'ftp://gate.example.com/',
    '',
    'x'.repeat(3000),
    // Paths that only become `//host` after the URL parser resolves dot segments.
    '/.//evil.com',
    '/x/..//evil.com',
    'https://gate.example.com//evil.com',
    '/%2f%2fevil.com',
    'https://evil.com\u3002gate.example.com',
  ])('refuses %j (falls back to /)', (input) => {
    expect(safeReturnTo(input, config)).toBe('/');
  });

  // With the base's own scheme and no `//`, the URL standard reads these as paths on our
  // origin (as browsers do): they stay here, as relative paths.
  it.each([
    ['https:evil.com', '/evil.com'],
    ['https:/evil.com', '/evil.com'],
    ['\u3002evil.com', '/%E3%80%82evil.com'],
  ])('keeps %j on our origin as %s', (input, expected) => {
    expect(safeReturnTo(input, config)).toBe(expected);
  });

  it('refuses non-strings', () => {
    expect(safeReturnTo(undefined, config)).toBe('/');
    expect(safeReturnTo(['/a'], config)).toBe('/');
  });
});
