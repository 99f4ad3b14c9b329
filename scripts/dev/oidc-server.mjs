// A local OpenID Connect provider for `npm run dev` (oauth2-mock-server, the same server the
// end-to-end tests use), wired into the gateway as the "Dev sign-in" provider through
// DEV_OIDC_ISSUER. It signs in anyone without a password, which is why the gateway refuses
// DEV_OIDC_ISSUER outside ENVIRONMENT=development. It listens on loopback only.
//
// Sign in as someone else: DEV_OIDC_EMAIL=ada@example.com npm run dev
// In other groups: DEV_OIDC_GROUPS=ops,staff npm run dev
import { OAuth2Server } from 'oauth2-mock-server';

const HOST = '127.0.0.1';

/**
 * The demo users' groups: `dev@example.com` is in `eng` and `staff` (so the demo route `/eng`,
 * which admits the `eng` group, lets it in), anyone else in `staff` only.
 */
export function devGroups(email, listed = process.env.DEV_OIDC_GROUPS) {
  if (listed !== undefined && listed.trim() !== '') return listed.split(',').map((g) => g.trim()).filter(Boolean);
  return email === 'dev@example.com' ? ['eng', 'staff'] : ['staff'];
}

/**
 * Claims the dev user gets: a verified email (so linking and ADMIN_EMAILS can be tried), a name,
 * and groups (`DEV_OIDC_GROUPS=ops,staff` lists others).
 */
export function devClaims(email = process.env.DEV_OIDC_EMAIL || 'dev@example.com') {
  return { sub: `dev:${email}`, email, email_verified: true, name: email.split('@')[0], groups: devGroups(email) };
}

/**
 * Starts the provider and resolves `{ issuer, server, vars, stop }`. `port` 0 picks a free one.
 * `claims()` is read at each token and userinfo request.
 */
export async function startDevOidcServer({ port = Number(process.env.DEV_OIDC_PORT || 8788), claims = () => devClaims() } = {}) {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  if (port !== 0) server.issuer.url = `http://${HOST}:${port}`;
  server.service.on('beforeTokenSigning', (token) => {
    // Raised for the access token and the ID token alike; the gateway reads only the ID token's.
    Object.assign(token.payload, claims());
  });
  server.service.on('beforeUserinfo', (response) => {
    response.body = { ...claims() };
  });
  await server.start(port, HOST);
  if (port === 0) server.issuer.url = `http://${HOST}:${server.address().port}`;
  const issuer = server.issuer.url;
  return { issuer, server, vars: { DEV_OIDC_ISSUER: issuer }, stop: () => server.stop() };
}

/** The `companions` entry for scripts/dev.mjs. */
export async function devOidcCompanion() {
  let started;
  try {
    started = await startDevOidcServer();
  } catch (e) {
    if (e?.code !== 'EADDRINUSE') throw e;
    // The issuer is passed to wrangler on every start, so any free port works as well.
    console.log(`[gatehouse] port ${e.port} is taken: the dev OpenID Connect provider uses a free port instead`);
    started = await startDevOidcServer({ port: 0 });
  }
  console.log(`[gatehouse] dev OpenID Connect provider at ${started.issuer} ("Dev sign-in" on the login page, signs in as ${devClaims().email}, groups ${devClaims().groups.join(', ')})`);
  return { vars: started.vars, stop: started.stop };
}
