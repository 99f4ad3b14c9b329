/**
 * `fn` computed once per key object, then served from a cache for the life of the isolate.
 *
 * The key is the object the value derives from: the parsed config (built once per isolate,
 * and again only when the environment changes), its route list, a keyring. A WeakMap is what
 * makes this safe: the cache holds its keys weakly, so a config replaced by a new one (tests
 * build many) takes its derived values with it, and two configs never share an entry.
 * A value of `undefined` is not allowed: it would read as "not computed yet".
 */
export function memoize<K extends object, V extends {} | null>(fn: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = fn(key);
      cache.set(key, value);
    }
    return value;
  };
}
