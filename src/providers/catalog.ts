/**
 * The providers Gatehouse knows, as data. Each is on when its credentials are set; adding one
 * (Microsoft Entra ID, Discord, ...) is one more entry here: an issuer for OpenID Connect
 * providers, or two endpoints and a profile fetcher for plain OAuth 2.0 ones.
 */
import type { Config } from '../config/schema';
import { fetchGitHubGroups, fetchGitHubProfile } from './github';
import type { Provider } from './types';

const OIDC_SCOPES = ['openid', 'email', 'profile'];

/** Every configured provider, in button order. The `dev` one exists only in development. */
export function configuredProviders(config: Config): Provider[] {
  const out: Provider[] = [];
  const offline = config.STORE_PROVIDER_TOKENS;
  if (config.GITHUB_CLIENT_ID && config.GITHUB_CLIENT_SECRET) {
    out.push({
      id: 'github',
      name: 'GitHub',
      protocol: 'oauth2',
      clientId: config.GITHUB_CLIENT_ID,
      clientSecret: config.GITHUB_CLIENT_SECRET,
      // Organisations and teams need `read:org`, which also reads private memberships: asked only when a route decides on groups.
      scopes: config.groupsNeeded ? ['read:user', 'user:email', 'read:org'] : ['read:user', 'user:email'],
      authorizationEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      fetchProfile: fetchGitHubProfile,
      ...(config.groupsNeeded ? { fetchGroups: fetchGitHubGroups } : {}),
    });
  }
  if (config.GOOGLE_CLIENT_ID && config.GOOGLE_CLIENT_SECRET) {
    out.push({
      id: 'google',
      name: 'Google',
      protocol: 'oidc',
      issuer: 'https://accounts.google.com',
      // Written down so a sign-in needs no discovery round trip; these are Google's published values.
      endpoints: {
        issuer: 'https://accounts.google.com',
        authorizationEndpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
        tokenEndpoint: 'https://oauth2.googleapis.com/token',
        jwksUri: 'https://www.googleapis.com/oauth2/v3/certs',
        userinfoEndpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
      },
      // Google documents both spellings of its issuer in ID tokens.
      issuerAliases: ['accounts.google.com'],
      clientId: config.GOOGLE_CLIENT_ID,
      clientSecret: config.GOOGLE_CLIENT_SECRET,
      scopes: OIDC_SCOPES,
      // Google issues a refresh token only for offline access, and only on consent.
      authorizationParams: offline ? { access_type: 'offline', prompt: 'consent' } : undefined,
    });
  }
  if (config.GITLAB_CLIENT_ID && config.GITLAB_CLIENT_SECRET) {
    out.push({
      id: 'gitlab',
      name: 'GitLab',
      protocol: 'oidc',
      issuer: 'https://gitlab.com',
      // GitLab documents `groups` (paths of the groups the user is in, directly or through a
      // parent group) in userinfo only; the ID token's `groups_direct` leaves inherited ones out.
      groupsClaim: 'groups',
      groupNamespace: 'gitlab',
      clientId: config.GITLAB_CLIENT_ID,
      clientSecret: config.GITLAB_CLIENT_SECRET,
      scopes: OIDC_SCOPES,
    });
  }
  if (config.OIDC_ISSUER && config.OIDC_CLIENT_ID) {
    out.push({
      id: 'oidc',
      name: config.OIDC_NAME || 'OpenID Connect',
      protocol: 'oidc',
      issuer: config.OIDC_ISSUER,
      clientId: config.OIDC_CLIENT_ID,
      clientSecret: config.OIDC_CLIENT_SECRET ?? null,
      groupsClaim: config.OIDC_GROUPS_CLAIM,
      // A refresh token renews kept tokens, and lets groups be re-read at refresh (README "Groups").
      scopes: offline || config.groupsNeeded ? [...OIDC_SCOPES, 'offline_access'] : OIDC_SCOPES,
    });
  }
  // The local OpenID Connect server `npm run dev` starts. Never in production, whatever is set.
  if (config.isDevelopment && config.DEV_OIDC_ISSUER) {
    out.push({
      id: 'dev',
      name: 'Dev sign-in',
      protocol: 'oidc',
      issuer: config.DEV_OIDC_ISSUER,
      clientId: 'gatehouse-dev',
      clientSecret: 'gatehouse-dev-secret',
      groupsClaim: 'groups',
      scopes: OIDC_SCOPES,
    });
  }
  return out;
}
