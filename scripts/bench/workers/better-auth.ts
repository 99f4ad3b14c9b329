// Peer: Better Auth's getSession (cookie session, stored in D1) in front of fetch to the origin.
// getSession verifies the signed session cookie and reads the session and its user from D1 on
// every request (the cookie cache is off, Better Auth's default). Built once per isolate.
// Set-up only (not measured): POST /__migrate creates Better Auth's tables; /api/auth/* is
// Better Auth's own handler (sign-up mints the session cookie).
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';

interface Env {
  ORIGIN: string;
  PUBLIC_URL: string;
  BETTER_AUTH_SECRET: string;
  DB: D1Database;
}

const options = (env: Env) => ({
  database: env.DB,
  secret: env.BETTER_AUTH_SECRET,
  baseURL: env.PUBLIC_URL,
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
});

const makeAuth = (env: Env) => betterAuth(options(env));
let auth: ReturnType<typeof makeAuth> | undefined;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const ba = (auth ??= makeAuth(env));
    const url = new URL(request.url);
    if (url.pathname === '/__migrate' && request.method === 'POST') {
      const { runMigrations } = await getMigrations(options(env));
      await runMigrations();
      return new Response('migrated');
    }
    if (url.pathname.startsWith('/api/auth/')) return ba.handler(request);
    const session = await ba.api.getSession({ headers: request.headers });
    if (!session) return Response.json({ error: 'unauthorized' }, { status: 401 });
    const headers = new Headers(request.headers);
    headers.delete('cookie');
    headers.set('x-auth-user-id', session.user.id);
    return fetch(`${env.ORIGIN}${url.pathname}${url.search}`, { method: request.method, headers, body: request.body });
  },
};
