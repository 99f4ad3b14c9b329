/**
 * The one place that decides what path a proxied request names.
 *
 * The runtime's URL parser has already resolved `.`/`..` and `%2e` dot segments. Here each
 * segment is percent-decoded once; anything whose meaning an origin could read differently
 * from us is refused: an encoded or literal `/` or `\` inside a segment, `;` (path parameters:
 * `/public/..;/admin` is `/admin` to Tomcat), a `%` left after decoding (double encoding),
 * control characters, and dot segments that only appear after decoding. Empty segments (`//`)
 * are dropped. Route matching uses the decoded segments; the origin receives the same segments
 * re-encoded canonically, so it sees exactly the path that was matched.
 *
 * Hand-written because no library offers this exact contract; it is small and fully tested
 * (test/worker/proxy-paths.test.ts).
 */
import { badRequest } from '../http/errors';

export interface NormalisedPath {
  /** Decoded segments, in order (never empty strings, never `.`/`..`). */
  segments: string[];
  /** Whether the path ended with `/` (kept: origins often tell `/app` from `/app/`). */
  trailingSlash: boolean;
}

const MAX_PATH_LENGTH = 8192;
const REFUSED_DECODED = /[\u0000-\u001f\u007f/\\;%]/;
// RFC 3986 pchar minus ";" (refused above) and "%" (re-added only by encoding).
const NOT_PCHAR = /[^A-Za-z0-9\-._~!$&'()*+,=:@]/gu;

export function normalisePath(pathname: string): NormalisedPath {
  if (pathname.length > MAX_PATH_LENGTH) throw badRequest('The request path is too long.');
  if (!pathname.startsWith('/') || pathname.includes(';') || pathname.includes('\\')) {
    throw badRequest('The request path is not a plain path.');
  }
  const segments: string[] = [];
  for (const raw of pathname.split('/')) {
    if (raw === '') continue;
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw badRequest('The request path is not valid percent-encoding.');
    }
    if (REFUSED_DECODED.test(decoded) || decoded === '.' || decoded === '..') {
      throw badRequest('The request path holds an encoded separator, a dot segment or double encoding.');
    }
    segments.push(decoded);
  }
  return { segments, trailingSlash: segments.length > 0 && pathname.endsWith('/') };
}

/** Re-encodes segments into the path an origin receives. */
export function encodePath(segments: readonly string[], trailingSlash: boolean): string {
  const body = segments.map((s) => s.replace(NOT_PCHAR, (ch) => encodeURIComponent(ch))).join('/');
  return `/${body}${trailingSlash && body ? '/' : ''}`;
}
