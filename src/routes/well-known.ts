/** `GET /.well-known/jwks.json` (public keys only) and `GET /auth/health`. */
import { Hono } from 'hono';
import type { AppEnv } from '../env';

export const jwksRoute = new Hono<AppEnv>().get('/.well-known/jwks.json', (c) => {
  // Short enough that a rotation is seen within minutes; origins' JWKS clients re-fetch on an unknown kid anyway.
  c.header('cache-control', 'public, max-age=300, stale-while-revalidate=60');
  c.header('access-control-allow-origin', '*');
  return c.json(c.get('keyring').jwks);
});

export const healthRoute = new Hono<AppEnv>().get('/health', (c) => {
  c.header('cache-control', 'no-store');
  return c.json({ status: 'ok' });
});
