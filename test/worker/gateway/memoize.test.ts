import { describe, expect, it } from 'vitest';
import { memoize } from '../../../src/util/memo';

describe('memoize', () => {
  it('computes once per key object and keeps keys apart', () => {
    let calls = 0;
    const twice = memoize((key: { n: number }) => {
      calls++;
      return { doubled: key.n * 2 };
    });
    const a = { n: 1 };
    const b = { n: 1 };
    const first = twice(a);
    expect(twice(a)).toBe(first);
    expect(calls).toBe(1);
    expect(twice(b)).not.toBe(first);
    expect(twice(b)).toEqual({ doubled: 2 });
    expect(calls).toBe(2);
  });

  it('caches a null result too', () => {
    let calls = 0;
    const nothing = memoize((_key: object) => {
      calls++;
      return null;
    });
    const key = {};
    expect(nothing(key)).toBeNull();
    expect(nothing(key)).toBeNull();
    expect(calls).toBe(1);
  });
});
