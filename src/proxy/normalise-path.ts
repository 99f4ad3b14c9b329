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
 * (test/worker/proxy/path-normalisation.test.ts).
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

// Origin-form: one `/`, then visible ASCII except `\`. A leading `//` reads as an authority
// (`//ops/deploy` is host `ops` to a URL parser), `\` as `/` to some servers and not to others,
// and a URL parser silently drops tabs and newlines and trims spaces: each would let the path we
// match differ from the one the proxy in front serves.
const ORIGIN_FORM_PATH = /^\/(?!\/)[\x21-\x5b\x5d-\x7e]*$/;
// Only for resolving a path relative to something: any special-scheme origin gives the same path.
const PARSE_BASE = 'https://gatehouse.invalid';

/**
 * The path a raw request target names (forward-auth's `X-Original-URI` / `X-Forwarded-Uri`,
 * which the proxy in front copies from the request line without resolving anything).
 *
 * Query and fragment are cut off by hand, the rest must be a plain origin-form path, and then
 * the same WHATWG URL parser the runtime uses for the built-in proxy's request URL resolves
 * `.`/`..`/`%2e` segments, so forward-auth and the proxy match exactly the same path. An origin
 * behind nginx resolves those dot segments too (or nginx does, for its own locations).
 */
export function normaliseRequestTarget(target: string): NormalisedPath {
  if (target.length > MAX_PATH_LENGTH) throw badRequest('The request path is too long.');
  const end = target.search(/[?#]/);
  const path = end === -1 ? target : target.slice(0, end);
  if (!ORIGIN_FORM_PATH.test(path)) {
    throw badRequest('The request target is not a plain path (one leading "/", visible ASCII, no "\\").');
  }
  return normalisePath(new URL(path, PARSE_BASE).pathname);
}

/** Re-encodes segments into the path an origin receives. */
export function encodePath(segments: readonly string[], trailingSlash: boolean): string {
  const body = segments.map((s) => s.replace(NOT_PCHAR, (ch) => encodeURIComponent(ch))).join('/');
  return `/${body}${trailingSlash && body ? '/' : ''}`;
}
