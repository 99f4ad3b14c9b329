/** Facts about the client, taken only from headers the Cloudflare edge sets itself. */
import type { Context } from 'hono';

/** The client's IP: `CF-Connecting-IP`, never `X-Forwarded-For` (which the client controls). */
export function clientIp(c: Context): string | null {
  return c.req.header('cf-connecting-ip')?.slice(0, 64) ?? null;
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
