// Peer: what a user would write instead of Gatehouse with Hono alone: the jwk() middleware
// verifying the bearer token against the gateway's public key, then hono/proxy.
// No revocation check, no identity assertion. The app (and its jwk() middleware, which holds
// the key set) is built once per isolate, on the first request, as a real deployment would.
import { Hono } from 'hono';
import { jwk } from 'hono/jwk';
import { proxy } from 'hono/proxy';

interface Bindings {
  ORIGIN: string;
  PUBLIC_JWKS: string;
  ISSUER: string;
}
type Env = { Bindings: Bindings; Variables: { jwtPayload: { sub?: unknown } } };

function build(env: Bindings): Hono<Env> {
  const app = new Hono<Env>();
  // The same checks Gatehouse makes on the token itself: algorithm, type, issuer, audience, expiry.
  app.use('*', jwk({ keys: JSON.parse(env.PUBLIC_JWKS).keys, alg: ['ES256'], verification: { typ: 'at+jwt', iss: env.ISSUER, aud: env.ISSUER } }));
  app.all('*', (c) => {
    const url = new URL(c.req.url);
    return proxy(`${c.env.ORIGIN}${url.pathname}${url.search}`, {
      ...c.req,
      headers: { ...c.req.header(), authorization: undefined, 'x-auth-user-id': String(c.get('jwtPayload').sub) },
    });
  });
  return app;
}

let app: Hono<Env> | undefined;

export default {
  fetch(request: Request, env: Bindings, ctx: ExecutionContext): Response | Promise<Response> {
    app ??= build(env);
    return app.fetch(request, env, ctx);
  },
};
