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
  const accept = c.req.header('accept') ?? '';
  const mode = c.req.header('sec-fetch-mode');
  if (mode && mode !== 'navigate') return false;
  return accept.includes('text/html');
}
