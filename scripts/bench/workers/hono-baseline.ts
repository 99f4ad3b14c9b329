// Scenario (c): what a user would write instead of Gatehouse with Hono alone: the jwk()
// middleware verifying the bearer token against the gateway's public key, then hono/proxy.
// No revocation check, no identity headers, no assertion.
import { Hono } from 'hono';
import { jwk } from 'hono/jwk';
import { proxy } from 'hono/proxy';

type Env = { Bindings: { ORIGIN: string; PUBLIC_JWKS: string; ISSUER: string } };

const app = new Hono<Env>();
// The same checks Gatehouse makes on the token itself: algorithm, type, issuer, audience, expiry.
app.use('*', (c, next) =>
  jwk({ keys: JSON.parse(c.env.PUBLIC_JWKS).keys, alg: ['ES256'], verification: { typ: 'at+jwt', iss: c.env.ISSUER, aud: c.env.ISSUER } })(c, next),
);
app.all('*', (c) => {
  const url = new URL(c.req.url);
  return proxy(`${c.env.ORIGIN}${url.pathname}${url.search}`, {
    ...c.req,
    headers: { ...c.req.header(), authorization: undefined, 'x-auth-user-id': String(c.get('jwtPayload').sub) },
  });
});

export default app;
