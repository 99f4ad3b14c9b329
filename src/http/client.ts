/** Facts about the client, taken only from headers the Cloudflare edge sets itself. */
import type { Context } from 'hono';

/** The client's IP: `CF-Connecting-IP`, never `X-Forwarded-For` (which the client controls). */
export function clientIp(c: Context): string | null {
  return c.req.header('cf-connecting-ip')?.slice(0, 64) ?? null;
}

/** An ISO 3166-1 alpha-2 code, or Cloudflare's `T1` (Tor); `XX` (unknown) is not one. */
const COUNTRY = /^(?:[A-Z]{2}|T1)$/;

/**
 * The client's country as the Cloudflare edge saw it (`request.cf.country`), never a header
 * (`CF-IPCountry` is the client's to send where no edge sets it). Null when unknown: absent,
 * `XX`, or anything not shaped as a code.
 */
export function clientCountry(c: Context): string | null {
  const country: unknown = c.req.raw.cf?.country;
  return typeof country === 'string' && country !== 'XX' && COUNTRY.test(country) ? country : null;
}

export function userAgent(c: Context): string | null {
  return c.req.header('user-agent')?.slice(0, 512) ?? null;
}

/** A top-level browser navigation that should get HTML (and redirects) rather than JSON. */
export function wantsHtml(c: Context): boolean {
  return navigationWantsHtml(c.req.raw);
}

/** {@link wantsHtml} for a bare request: the entry point answers some before any app exists. */
export function navigationWantsHtml(request: Request): boolean {
  const accept = request.headers.get('accept') ?? '';
  const mode = request.headers.get('sec-fetch-mode');
  if (mode && mode !== 'navigate') return false;
  return accept.includes('text/html');
}
