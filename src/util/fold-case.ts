/**
 * Case folding for route matching, at least as loose as any case-insensitive origin's.
 *
 * Route prefixes are compared case-insensitively so that an origin which ignores case cannot be
 * reached past a route's policy (`/ADMIN` is still the `/admin` route). `toLowerCase()` alone
 * misses thirteen non-ASCII characters that some folding (upper, lower, either after the other,
 * or the Turkish/Azeri/Lithuanian locale rules) turns into ASCII letters: `admın`
 * (dotless ı) upper-cases to `ADMIN`, `ſ` to `S`, the Kelvin sign lower-cases to `k`, `ß` to
 * `SS`, and so on. An origin using any of those foldings would serve `/admın` as `/admin`.
 *
 * We fold these characters rather than refuse them: refusing would break ordinary paths (German
 * `straße`), while folding only makes a segment match a route whenever some origin could read
 * it as that route, so the policy applied is that route's. The origin still receives the
 * segments exactly as sent. The table is complete: test/worker/proxy/cross-site-and-websocket-attacks.test.ts checks
 * every code point against those foldings.
 */
const TO_ASCII: Readonly<Record<string, string>> = {
  '\u00DF': 'ss', // ß
  '\u0130': 'i', // İ (Turkish lower-case: i)
  '\u0131': 'i', // ı (upper-case: I)
  '\u017F': 's', // ſ (upper-case: S)
  '\u1E9E': 'ss', // ẞ
  '\u212A': 'k', // Kelvin sign (lower-case: k)
  '\uFB00': 'ff',
  '\uFB01': 'fi',
  '\uFB02': 'fl',
  '\uFB03': 'ffi',
  '\uFB04': 'ffl',
  '\uFB05': 'st',
  '\uFB06': 'st',
};
const FOLDS_TO_ASCII = new RegExp(`[${Object.keys(TO_ASCII).join('')}]`, 'gu');
const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** The form of a decoded path segment (or route prefix segment) that route matching compares. */
export function foldSegment(segment: string): string {
  if (ASCII_ONLY.test(segment)) return segment.toLowerCase();
  return segment.replace(FOLDS_TO_ASCII, (ch) => TO_ASCII[ch] ?? ch).toLowerCase();
}
